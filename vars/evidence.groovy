// The evidence Jenkins shared-library step: runs one evidence command with
// a released CLI, installed by resources/evidence/run.sh (the archive
// checked against the release's checksums.txt, kept in the agent's cache).
// The agent needs bash, curl or wget, sha256sum and tar.
//
//   @Library('evidence@v1.4.0') _
//   evidence version: '1.4.0', args: ['emit', 'test', '--suite', 'unit', '--junit', 'target/surefire-reports/TEST-unit.xml']
//   def code = evidence version: '1.4.0', args: ['gate', '--env', 'production'], returnStatus: true   // 0 allow, 1 deny, 2 error
//
// Options: version (else env.EVIDENCE_VERSION), args (a list: each is one
// argument, quoted for the shell), releaseUrl (a mirror), cacheDir (default
// $HOME/.cache/evidence), returnStatus (return the exit code instead of
// failing the build). EVIDENCE_SERVER and EVIDENCE_TOKEN come from the
// environment (environment { EVIDENCE_TOKEN = credentials('evidence-token') }).
// See docs/ci.md ("Jenkins shared library").
def call(Map opts = [:]) {
  String version = opts.version ?: env.EVIDENCE_VERSION
  if (!version) {
    error "evidence: no version: evidence version: '1.4.0', args: [...]"
  }
  List args = (opts.args ?: []) as List
  if (args.isEmpty()) {
    error "evidence: no args: evidence version: '${version}', args: ['emit', 'pipeline', '--status', 'started']"
  }
  String runner = "${env.WORKSPACE_TMP ?: pwd(tmp: true)}/evidence-run.sh"
  writeFile file: runner, text: libraryResource('evidence/run.sh')
  List vars = ["EVIDENCE_VERSION=${version}", "EVIDENCE_CACHE_DIR=${opts.cacheDir ?: "${env.HOME}/.cache/evidence"}"]
  if (opts.releaseUrl) {
    vars << "EVIDENCE_RELEASE_URL=${opts.releaseUrl}"
  }
  String line = (['bash', runner] + args).collect { shellQuote(it as String) }.join(' ')
  withEnv(vars) {
    if (opts.returnStatus) {
      return sh(script: line, returnStatus: true)
    }
    sh(script: line)
  }
}

@NonCPS
private static String shellQuote(String s) {
  return "'" + s.replace("'", "'\\''") + "'"
}
