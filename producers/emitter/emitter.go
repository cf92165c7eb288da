// Package emitter sends CloudEvents to evidenced over HTTP: one event in
// the structured mode, several in the batch mode, with retries and
// exponential backoff on what a retry can fix (connection errors, 408,
// 429, 5xx) and a clear error on what it cannot (the server refusing the
// event, with its reason).
//
// Events are built with the CloudEvents SDK (github.com/cloudevents/sdk-go/v2
// event.Event). Retrying is safe: evidenced stores an event once per source
// and id.
package emitter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Client posts events to one evidenced.
type Client struct {
	// Server is evidenced's base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Token is the bearer token (role producer); empty sends none.
	Token string
	// HTTP is the client used (default: 30s timeout).
	HTTP *http.Client
	// Attempts is the most tries per send (default 5).
	Attempts int
	// MinBackoff and MaxBackoff bound the wait between tries (default
	// 500ms and 15s); a Retry-After from the server is honoured within
	// MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnRetry, when set, is told of each failed try that will be retried.
	OnRetry func(attempt int, err error, wait time.Duration)
}

// New returns a client with the defaults.
func New(server, token string) *Client {
	return &Client{Server: strings.TrimRight(server, "/"), Token: token}
}

// Result is evidenced's answer to a post.
type Result struct {
	Accepted   int           `json:"accepted"`
	Stored     int           `json:"stored"`
	Duplicates int           `json:"duplicates"`
	Events     []EventResult `json:"events"`
}

// EventResult is what evidenced did with one event.
type EventResult struct {
	Index     int    `json:"index"`
	ID        string `json:"id"`
	Source    string `json:"source"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Error     string `json:"error"`
}

// eventProblem is one refused event of an error answer: Detail in a
// problem document's errors, Message in an older evidenced's invalid.
type eventProblem struct {
	Index   int    `json:"index"`
	ID      string `json:"id"`
	Field   string `json:"field"`
	Detail  string `json:"detail"`
	Message string `json:"message"`
}

// RefusedError is evidenced refusing the events (a 4xx other than 408 and
// 429): retrying will not help.
type RefusedError struct {
	Status  int
	Message string
	// Problems lists per-event reasons, as "event N (id): field: message".
	Problems []string
}

func (e *RefusedError) Error() string {
	s := fmt.Sprintf("refused by evidenced (%d %s): %s", e.Status, http.StatusText(e.Status), e.Message)
	if len(e.Problems) > 1 || (len(e.Problems) == 1 && !strings.HasSuffix(e.Problems[0], e.Message)) {
		s += "\n  " + strings.Join(e.Problems, "\n  ")
	}
	return s
}

// ErrUnavailable wraps the last error when every attempt failed for a
// reason a retry could have fixed (evidenced unreachable or overloaded).
var ErrUnavailable = errors.New("evidenced unavailable")

// Send posts the events: one in the structured mode, more in the batch
// mode. It retries until an answer is final or the attempts are spent.
func (c *Client) Send(ctx context.Context, events ...event.Event) (*Result, error) {
	if len(events) == 0 {
		return &Result{}, nil
	}
	var body []byte
	var err error
	ct := "application/cloudevents+json"
	if len(events) == 1 {
		body, err = json.Marshal(events[0])
	} else {
		ct = "application/cloudevents-batch+json"
		body, err = json.Marshal(events)
	}
	if err != nil {
		return nil, fmt.Errorf("encode events: %w", err)
	}
	return c.Post(ctx, ct, body)
}

// Post posts an encoded body of the given content type, with retries.
func (c *Client) Post(ctx context.Context, contentType string, body []byte) (*Result, error) {
	attempts, minB, maxB := c.Attempts, c.MinBackoff, c.MaxBackoff
	if attempts <= 0 {
		attempts = 5
	}
	if minB <= 0 {
		minB = 500 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 15 * time.Second
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	backoff := minB
	var last error
	for attempt := 1; attempt <= attempts; attempt++ {
		res, retryAfter, err := c.once(ctx, hc, contentType, body)
		if err == nil {
			return res, nil
		}
		var refused *RefusedError
		if errors.As(err, &refused) || ctx.Err() != nil {
			return nil, err
		}
		last = err
		if attempt == attempts {
			break
		}
		wait := backoff
		if retryAfter > 0 {
			wait = min(retryAfter, maxB)
		}
		if c.OnRetry != nil {
			c.OnRetry(attempt, err, wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(backoff*2, maxB)
	}
	return nil, fmt.Errorf("%w: gave up after %d attempts: %w", ErrUnavailable, attempts, last)
}

func (c *Client) once(ctx context.Context, hc *http.Client, contentType string, body []byte) (*Result, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return nil, 0, &RefusedError{Message: "bad server URL: " + err.Error()}
	}
	req.Header.Set("Content-Type", contentType)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	// An error answer is a problem document (RFC 9457; internal/problem):
	// its detail, and for a 400 the refused events under errors. Error and
	// Invalid are what an evidenced older than problem documents sent.
	var answer struct {
		Result
		Detail  string         `json:"detail"`
		Errors  []eventProblem `json:"errors"`
		Error   string         `json:"error"`
		Invalid []eventProblem `json:"invalid"`
	}
	_ = json.Unmarshal(b, &answer)
	if answer.Detail != "" {
		answer.Error = answer.Detail
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return &answer.Result, 0, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		msg := answer.Error
		if msg == "" {
			msg = strings.TrimSpace(string(b))
		}
		return nil, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("%s: %s", resp.Status, msg)
	default:
		e := &RefusedError{Status: resp.StatusCode, Message: answer.Error}
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		for _, p := range append(answer.Errors, answer.Invalid...) {
			e.Problems = append(e.Problems, fmt.Sprintf("event %d (%s): %s: %s", p.Index, p.ID, p.Field, p.Detail+p.Message))
		}
		return nil, 0, e
	}
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
