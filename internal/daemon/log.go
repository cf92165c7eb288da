package daemon

import (
	"io"
	"log/slog"
)

// NewLogger is evidenced's structured logger: text or JSON at a level
// (debug, info, warn, error).
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
