package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/go-openapi/strfmt"
	goapi "github.com/grafana/grafana-openapi-client-go/client"
	"github.com/grafana/grafana-openapi-client-go/models"

	evdash "github.com/evidencepipeline/evidence/dashboards"
)

// runDashboards: evidence dashboards push --grafana-url URL [--folder NAME].
func runDashboards(ctx context.Context, args []string, env Env) int {
	const use = "usage: evidence dashboards push --grafana-url URL [--folder NAME] (token from GRAFANA_TOKEN)"
	if isHelp(args) {
		fmt.Fprintln(env.Stderr, use)
		return ExitOK
	}
	if len(args) == 0 {
		return fail(env, ExitUsage, use)
	}
	if args[0] != "push" {
		return fail(env, ExitUsage, "dashboards: unknown subcommand %q: want push\n%s", args[0], use)
	}
	fs := flag.NewFlagSet("dashboards push", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	grafanaURL := fs.String("grafana-url", "", "Grafana's root URL, e.g. https://grafana.example.com (required)")
	token := fs.String("token", "", "service account token (default: GRAFANA_TOKEN; prefer the variable: a flag shows in the process list)")
	folder := fs.String("folder", evdash.FolderTitle, "title of the folder the dashboards go to")
	folderUID := fs.String("folder-uid", evdash.FolderUID, "uid of that folder (created when missing)")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of each request to Grafana")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "evidence dashboards push: unexpected argument %q", fs.Arg(0))
	}
	u, err := url.Parse(*grafanaURL)
	switch {
	case *grafanaURL == "":
		return fail(env, ExitUsage, "evidence dashboards push: --grafana-url is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fail(env, ExitUsage, "evidence dashboards push: --grafana-url %q is not an http(s) URL", *grafanaURL)
	case u.RawQuery != "" || u.Fragment != "":
		return fail(env, ExitUsage, "evidence dashboards push: --grafana-url %q: give Grafana's root URL, without a query", *grafanaURL)
	}
	tok := *token
	if tok == "" && env.Getenv != nil {
		tok = env.Getenv("GRAFANA_TOKEN")
	}
	if tok == "" {
		return fail(env, ExitUsage, "evidence dashboards push: no token: set GRAFANA_TOKEN to a Grafana service account token (role Editor or more)")
	}
	if strings.TrimSpace(*folder) == "" || strings.TrimSpace(*folderUID) == "" {
		return fail(env, ExitUsage, "evidence dashboards push: --folder and --folder-uid must not be empty")
	}
	all, err := evdash.All()
	if err != nil {
		return fail(env, ExitFail, "evidence dashboards push: %v", err)
	}

	client := goapi.NewHTTPClientWithConfig(strfmt.Default, &goapi.TransportConfig{
		Host:     u.Host,
		BasePath: strings.TrimSuffix(u.Path, "/") + "/api",
		Schemes:  []string{u.Scheme},
		APIKey:   tok,
		Client:   &http.Client{Timeout: *timeout},
	})
	p := pusher{client: client, ctx: ctx, base: strings.TrimSuffix(u.String(), "/")}

	what, err := p.folder(*folderUID, *folder)
	if err != nil {
		return fail(env, ExitFail, "evidence dashboards push: folder %q (uid %s): %v", *folder, *folderUID, err)
	}
	fmt.Fprintf(env.Stdout, "folder %q (uid %s): %s\n", *folder, *folderUID, what)
	for _, d := range all {
		res, err := p.dashboard(d, *folderUID)
		if err != nil {
			return fail(env, ExitFail, "evidence dashboards push: dashboard %s (%s, uid %s): %v", d.File, d.Title, d.UID, err)
		}
		version := int64(0)
		if res.Version != nil {
			version = *res.Version
		}
		// Grafana's url already holds its sub-path, if it has one.
		fmt.Fprintf(env.Stdout, "dashboard %q (uid %s): saved, version %d, %s://%s%s\n", d.Title, d.UID, version, u.Scheme, u.Host, derefString(res.URL))
	}
	fmt.Fprintf(env.Stdout, "%d dashboards pushed to %s\n", len(all), p.base)
	return ExitOK
}

type pusher struct {
	client *goapi.GrafanaHTTPAPI
	ctx    context.Context
	base   string
}

func (p pusher) opt(o *runtime.ClientOperation) { o.Context = p.ctx }

// folder makes sure the folder uid exists with the title, and says what it
// did: created, renamed, or unchanged.
func (p pusher) folder(uid, title string) (string, error) {
	got, err := p.client.Folders.GetFolderByUID(uid, p.opt)
	if err != nil {
		if status(err) != http.StatusNotFound {
			return "", explain(err)
		}
		if _, err := p.client.Folders.CreateFolder(&models.CreateFolderCommand{UID: uid, Title: title}, p.opt); err != nil {
			return "", explain(err)
		}
		return "created", nil
	}
	if got.Payload != nil && got.Payload.Title == title {
		return "exists", nil
	}
	if _, err := p.client.Folders.UpdateFolder(uid, &models.UpdateFolderCommand{Title: title, Overwrite: true}, p.opt); err != nil {
		return "", explain(err)
	}
	return "renamed", nil
}

// dashboard saves one dashboard in the folder, replacing the one with the
// same uid whatever its version.
func (p pusher) dashboard(d evdash.Dashboard, folderUID string) (*models.PostDashboardOKBody, error) {
	var model map[string]any
	if err := json.Unmarshal(d.JSON, &model); err != nil {
		return nil, err
	}
	delete(model, "id") // Grafana finds it by uid
	res, err := p.client.Dashboards.PostDashboard(&models.SaveDashboardCommand{
		Dashboard: model, FolderUID: folderUID, Overwrite: true,
		Message: "evidence dashboards push",
	}, p.opt)
	if err != nil {
		return nil, explain(err)
	}
	if res.Payload == nil {
		return nil, errors.New("Grafana answered without a body")
	}
	return res.Payload, nil
}

// status is the HTTP status of a Grafana API error, 0 when it has none.
func status(err error) int {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		return coded.Code()
	}
	var api *runtime.APIError
	if errors.As(err, &api) {
		return api.Code
	}
	return 0
}

// explain turns a Grafana API error into a sentence that says what to do.
func explain(err error) error {
	msg := ""
	var withPayload interface {
		GetPayload() *models.ErrorResponseBody
	}
	if errors.As(err, &withPayload) && withPayload.GetPayload() != nil && withPayload.GetPayload().Message != nil {
		msg = ": " + *withPayload.GetPayload().Message
	}
	switch status(err) {
	case http.StatusUnauthorized:
		return fmt.Errorf("Grafana refused the token (401 Unauthorized%s): check GRAFANA_TOKEN", msg)
	case http.StatusForbidden:
		return fmt.Errorf("the token may not do this (403 Forbidden%s): its service account needs the Editor role, or edit rights on the folder", msg)
	case http.StatusNotFound:
		return fmt.Errorf("not found (404 Not Found%s): is --grafana-url Grafana's root URL?", msg)
	case http.StatusPreconditionFailed:
		return fmt.Errorf("Grafana refused to save (412 Precondition Failed%s): another dashboard of the folder has the same title, or a plugin dashboard has this uid", msg)
	case 0:
		return fmt.Errorf("cannot reach Grafana: %w", err)
	}
	return fmt.Errorf("Grafana answered %d%s: %w", status(err), msg, err)
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
