// Package access derives the access record of a repository from the access
// events of the catalog (issue 17): who held which permission since when and
// granted by whom, the branch protection settings in force at any instant,
// the pushes that bypassed protection, the sign-offs of the access list, and
// the snapshots that reset the state to what the platform said at an
// instant.
//
// Like package correlate, its core is pure: [Extract] turns one CloudEvent
// into a [Fact] (its ID is the SHA-256 of its canonical JSON, so the same
// event seen twice is one fact), and [Derive] turns a set of facts into a
// [Record]. Derivation folds the facts in (time, kind rank, fact ID) order,
// never in arrival order, and sorts every list it outputs, so the same set
// of events in any order and with any duplicates gives byte-identical
// records (json.Marshal of a Record is its canonical form).
//
// # Subjects
//
// A record is about one subject: a repository (host/owner/name, lower case)
// or an organisation ("org:host/org") for organisation-level grants. Change
// tickets named by protection changes and grants are filed under
// "ticket:<KEY>" and exceptions for AC controls under their repository; the
// record of a repository carries the approvals of the tickets it names and
// the exceptions scoped to it.
//
// # Folding rules
//
//   - Grants are keyed by principal (kind and login, case-insensitive). A
//     granted, changed or snapshot fact whose permission differs from the
//     grant held ends that grant at its time and opens a new one; one with
//     the same permission changes nothing. A removed fact ends the grant
//     held. A permission of "none" holds nothing.
//   - Protection settings are keyed by rule_kind, rule_id and target. A
//     created, edited or snapshot fact whose settings differ from the
//     period in force ends it and opens a new period; a deleted fact ends
//     the period and opens a "deleted" period (no settings) that lasts until
//     the rule is created again.
//   - A snapshot (access.snapshot.v1) at T says what held at T: every grant
//     and protection period open at T and missing from it ends at T (end
//     reason "snapshot"), and those it lists are opened as by a snapshot
//     fact of their own.
//
// [KVStore] keeps each subject's facts in a NATS KV bucket, merged by
// compare-and-set, so two writers never lose a fact and a replayed event
// changes nothing.
package access
