package ci

import (
	"strings"
	"testing"
)

func TestNormalizeRepository(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"https://github.com/octo/app", "github.com/octo/app"},
		{"https://github.com/octo/app.git", "github.com/octo/app"},
		{"https://github.com/octo/app/", "github.com/octo/app"},
		{"https://github.com/octo/app.git/", "github.com/octo/app"},
		{"http://GitHub.COM/Octo/App", "github.com/Octo/App"},
		{"https://user:token@github.com/octo/app.git", "github.com/octo/app"},
		{"https://x-access-token:ghs_abc@github.com/octo/app", "github.com/octo/app"},
		{"https://ghp_tokenonly@github.com/octo/app", "github.com/octo/app"},
		{"https://gitlab-ci-token:glcbt-64_SECRET@gitlab.example.com/platform/payments/api.git", "gitlab.example.com/platform/payments/api"},
		{"https://contoso@dev.azure.com/contoso/Payments/_git/payments-api", "dev.azure.com/contoso/Payments/_git/payments-api"},
		{"https://gitlab.example.com:8443/group/sub/app.git", "gitlab.example.com/group/sub/app"},
		{"https://github.com/octo/app?tab=readme#top", "github.com/octo/app"},
		{"https://github.com//octo//app", "github.com/octo/app"},
		{"git@github.com:octo/app.git", "github.com/octo/app"},
		{"git@github.com:octo/app", "github.com/octo/app"},
		{"github.com:octo/app.git", "github.com/octo/app"},
		{"org-123@ssh.dev.azure.com:v3/contoso/Payments/payments-api", "ssh.dev.azure.com/v3/contoso/Payments/payments-api"},
		{"ssh://git@github.com/octo/app.git", "github.com/octo/app"},
		{"ssh://git@gitlab.com:2222/g/sub/app.git", "gitlab.com/g/sub/app"},
		{"git+ssh://git@github.com/octo/app.git", "github.com/octo/app"},
		{"git://github.com/octo/app.git", "github.com/octo/app"},
		{"ssh://git@[2001:db8::1]:22/octo/app.git", "[2001:db8::1]/octo/app"},
		{"file:///srv/git/app.git", "srv/git/app"},
		{"octo/app", "octo/app"},
		{"octo/app.git", "octo/app"},
		{"github.com/octo/app", "github.com/octo/app"},
		{"user:token@github.com/octo/app", "github.com/octo/app"},
		{"  https://github.com/octo/app.git\n", "github.com/octo/app"},
		{"https://github.com/octo/app.git.git", "github.com/octo/app"},
		{"https://host/a/.git", "host/a"},
		// Malformed credentials (unescaped '/', '#', '?') are still removed.
		{"https://user:pa/ss@github.com/octo/app", "github.com/octo/app"},
		{"https://user:p#ss@github.com/octo/app", "github.com/octo/app"},
		{"https://user:p?ss@github.com/octo/app", "github.com/octo/app"},
	}
	for _, tt := range tests {
		if got := NormalizeRepository(tt.in); got != tt.want {
			t.Errorf("NormalizeRepository(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := NormalizeRepository(tt.want); got != tt.want {
			t.Errorf("NormalizeRepository(%q) = %q, not stable", tt.want, got)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://ci.example.com/job/1/", "https://ci.example.com/job/1/"},
		{"https://u:p@ci.example.com/job/1/", "https://ci.example.com/job/1/"},
		{"https://token@ci.example.com/job/1?x=1", "https://ci.example.com/job/1?x=1"},
		{"https://u:p@ci.example.com:%zz/", ""},
		{"not a url", "not a url"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzNormalizeRepository(f *testing.F) {
	for _, s := range []string{
		"https://github.com/octo/app.git",
		"https://user:token@github.com/octo/app",
		"git@github.com:octo/app.git",
		"ssh://git@gitlab.com:2222/g/sub/app.git",
		"ssh://git@[2001:db8::1]:22/octo/app.git",
		"file:///srv/git/app.git",
		"octo/app",
		"https://user:pa/ss@github.com/octo/app",
		"a.git.git/.git",
		":x",
		"[::1]:a/b",
	} {
		f.Add(s, "user", "s3cr3t")
	}
	f.Fuzz(func(t *testing.T, s, user, pass string) {
		got := NormalizeRepository(s)
		if strings.Contains(got, "@") {
			t.Errorf("NormalizeRepository(%q) = %q keeps '@'", s, got)
		}
		if strings.Contains(got, "://") {
			t.Errorf("NormalizeRepository(%q) = %q keeps a scheme", s, got)
		}
		if strings.HasSuffix(got, ".git") || strings.HasSuffix(got, "/") || strings.HasPrefix(got, "/") {
			t.Errorf("NormalizeRepository(%q) = %q is not trimmed", s, got)
		}
		if again := NormalizeRepository(got); again != got {
			t.Errorf("NormalizeRepository(%q) = %q, then %q: not stable", s, got, again)
		}

		// Credentials have no influence on the result, whatever they hold,
		// in every URL form.
		if strings.Contains(s, "@") {
			return
		}
		userinfo := user
		if pass != "" {
			userinfo += ":" + pass
		}
		for _, scheme := range []string{"https://", "ssh://", "git+ssh://", ""} {
			if scheme == "" && strings.Contains(s+userinfo, "://") {
				// Without a scheme the userinfo or s would supply one.
				continue
			}
			plain := NormalizeRepository(scheme + s)
			withCreds := NormalizeRepository(scheme + userinfo + "@" + s)
			if plain != withCreds {
				t.Errorf("credentials change the result: %q gives %q, %q gives %q",
					scheme+s, plain, scheme+userinfo+"@"+s, withCreds)
			}
		}
	})
}
