// Package webhooktest holds what the tests of the webhook adapters
// (producers/github, gitlab, jira, servicenow) share: the shared payload
// corpus and fuzz seeds, the checks every translation must pass, signing
// helpers, and a Fixture that serves a provider's webhook.Handler over HTTP
// and publishes to an embedded JetStream, with the event stream read back.
//
// It is a normal package so that several test packages can import it, but
// only tests import it: it calls testing.TB and starts servers.
package webhooktest
