// Package cdevents validates CDEvents (cdevents.dev) carried as CloudEvents,
// so that the receiver accepts every CDEvents event type as it is and checks
// it against the CDEvents schemas when the type is one of theirs.
//
// A CDEvent travels as the data of a CloudEvent whose type is
// dev.cdevents.<subject>.<predicate>.<event version>; the data is a JSON
// object {context, subject[, customData, customDataContentType]}. Is tells
// whether a CloudEvents type has that form; Validate checks the data and
// returns a *ValidationError that names each JSON path at fault
// ("data/subject/content/environment"), in the shape of the project's
// catalog validation (ce.Problem).
//
// The official JSON Schemas are not fetched at run time: they are kept here
// as Go data, one table per spec version:
//
//   - CDEvents 0.5 (context.specversion 0.5.x): the v0.5.1 schemas, all of
//     them — context, subject, content, enums, formats and
//     additionalProperties: false where the schema says so. A test reads the
//     official v0.5.1 schemas and fails when this table drifts from them.
//   - CDEvents 0.4 (context.version 0.4.x): the event versions of v0.4.1 for
//     every type, the envelope, and the content of the types whose v0.4.1
//     definition was checked (see docs/cdevents.md); other 0.4 types get
//     envelope checks only, and 0.4 unknown fields are never rejected.
//   - The draft approval events (dev.cdevents.approval.{created,updated,
//     closed}.0.1.0, context.specversion 0.6.0-draft), from the schemas of
//     the unreleased spec.
//
// Earlier CDEvents versions (0.1 to 0.3, and the pre-0.1 format of the
// Jenkins plugin, which has no context object) are refused with an
// "unsupported CDEvents spec version" problem. Custom events
// (dev.cdeventsx.*) are not CDEvents types for Is.
package cdevents
