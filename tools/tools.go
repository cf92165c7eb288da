//go:build tools

// Package tools pins the development tools the tests and make targets run
// (go build or go run from this directory), apart from the main module so
// that their dependencies neither bloat nor constrain it.
package tools

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
