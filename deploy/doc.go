// Package deploy holds the deployment configuration of the evidence pipeline
// (the NATS config, the example tokens file) and the tests that check it
// together with docker-compose.yml, the Dockerfile and the Grafana
// provisioning files, without a Docker engine: the compose file is loaded and
// validated by compose-go, the same library docker compose uses.
package deploy
