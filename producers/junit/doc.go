// Package junit summarizes JUnit XML test reports: how many tests ran,
// passed, failed, errored and were skipped, per suite, with the failed cases.
//
// The format has no single specification; the flavours read are the ones
// tools write: a <testsuites> root with <testsuite> children or a bare
// <testsuite> root (Ant and Maven Surefire, pytest, go-junit-report,
// gotestsum, jest-junit, PHPUnit's nested suites, ...).
//
// Counts come from the <testcase> elements, because the count attributes of
// a suite are often missing or wrong; a suite that lists no cases and
// contains no suites falls back to its tests, failures, errors and skipped
// attributes. A case is an error when it has an <error> child, a failure
// when it has a <failure>, skipped when it has a <skipped>, and passed
// otherwise (Surefire's <flakyFailure> and <flakyError> mark a test that
// passed on a rerun). A suite that contains suites is reported through them
// and not itself, so nothing is counted twice.
//
// Reports are decoded as a stream: passing cases are counted and forgotten,
// and at most [MaxFailures] failed or errored cases are kept, each message
// cut to [MaxMessageSize] bytes, so that a huge report makes a small event.
// Input beyond [MaxInputSize] is refused.
package junit
