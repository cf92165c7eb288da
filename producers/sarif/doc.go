// Package sarif summarizes SARIF 2.1.0 logs, the output of static analysis
// and vulnerability scanners (CodeQL, Semgrep, Trivy, gosec, Snyk, ...): the
// tools that ran, how many results they reported at each severity, and the
// most severe findings.
//
// # Severity
//
// SARIF's own result.level (error, warning, note, none) says how a tool
// rates a result, not how dangerous it is, so tools add their own ratings in
// property bags. The severity of a result is the first of:
//
//  1. properties["security-severity"] of the result, then of its rule: a
//     CVSS-like score, as GitHub code scanning reads it (CodeQL, Trivy,
//     Snyk, Semgrep rules that carry one): 9.0 and above critical, 7.0
//     high, 4.0 medium, 0.1 low, below that none;
//  2. properties["severity"] of the result, then of its rule, a word:
//     critical, high, medium (or moderate), low, info (none); or a level
//     word (error, warning, note);
//  3. a tag of the result or its rule that is exactly CRITICAL, HIGH,
//     MEDIUM or LOW (gosec and Trivy tag rules with the tool's severity);
//  4. result.level;
//  5. properties["problem.severity"] of the result, then of its rule
//     (CodeQL: error, warning, recommendation);
//  6. none, when result.kind is present and not "fail" (SARIF §3.27.10);
//  7. the rule's defaultConfiguration.level;
//  8. "warning", SARIF's default.
//
// Levels map error to high, warning to medium, note (and recommendation) to
// low, none to none. The rule of a result is found through result.rule
// (index and toolComponent, as CodeQL writes it), result.ruleIndex, or its
// id in the driver's and extensions' rules.
//
// # What is counted
//
// A result is not counted when it is suppressed (a non-empty suppressions
// array whose entries are all accepted; a suppression under review or
// rejected leaves the result counted), when its kind is "pass" or
// "notApplicable" (not a finding), or when its baselineState is "absent"
// (a finding that has gone). Suppressed results are counted apart, in
// Summary.Suppressed.
//
// Logs are decoded into small structures holding only what is summarized;
// the input is limited to [MaxInputSize].
package sarif
