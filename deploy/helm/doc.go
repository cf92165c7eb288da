// Package helm holds the tests of the evidence Helm chart (deploy/helm/evidence).
//
// It is its own module so that the Helm SDK and the Kubernetes API types
// stay out of the main module's dependencies.
package helm
