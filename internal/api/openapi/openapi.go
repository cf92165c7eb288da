// Package openapi holds the OpenAPI 3.1 description of evidenced's HTTP
// API (openapi.yaml), embedded. It imports nothing, so that the API
// (internal/api serves it at GET /v1/openapi.yaml) and the tests' contract
// check (internal/api/apitest, used by test helpers of packages that
// internal/api itself imports) can both read it.
package openapi

import _ "embed"

// YAML is the description.
//
//go:embed openapi.yaml
var YAML []byte
