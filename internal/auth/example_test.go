package auth_test

import (
	"testing"

	"github.com/evidencepipeline/evidence/internal/auth"
)

// The example tokens file that docker-compose mounts loads.
func TestExampleTokensFile(t *testing.T) {
	tokens, err := auth.Load("../../deploy/tokens.example")
	if err != nil {
		t.Fatal(err)
	}
	if tokens.Len() == 0 {
		t.Fatal("no tokens")
	}
}
