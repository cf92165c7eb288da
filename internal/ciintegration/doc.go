// Package ciintegration holds the tests of the CI integrations shipped at
// the repository's root: the GitHub Action (action.yml), the GitLab CI/CD
// component (templates/evidence.yml), the Jenkins shared-library step
// (vars/evidence.groovy) and the installer they share
// (resources/evidence/run.sh). Each test runs the integration's own shell
// steps, with the variables its CI system documents, against a real
// evidenced and a release server on loopback serving a freshly built CLI.
package ciintegration
