package evaluate

import "github.com/evidencepipeline/evidence/processors/evaluate/policies"

// Params configure the built-in controls (policies.Params: their one
// definition, which the CLI's policy replay uses too). Zero fields take
// the defaults.
type Params = policies.Params

// DefaultParams are the defaults.
func DefaultParams() Params { return policies.DefaultParams() }
