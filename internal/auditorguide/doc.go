// Package auditorguide keeps docs/auditor-guide.md true. Its tests, against
// a real ClickHouse: the data dictionary names every table and column of
// the migrated evidence database, with its type, and nothing else; the
// list of system tables the read-only auditor user can read is the one the
// server gives; and every query of the cookbook, run as the auditor over a
// known scenario (scenario_test.go), returns the expected rows.
//
// The package has no code of its own: the guide is the product.
package auditorguide
