// Package logging routes the logs of the libraries orch embeds (hashicorp/raft
// through hclog, memberlist through the standard log package) into log/slog, so
// one handler decides format and level for the whole process.
package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Discard is a logger that drops everything; tests and benchmarks use it when
// log output would only be noise.
var Discard = slog.New(slog.DiscardHandler)

// Hclog adapts an slog.Logger to hclog.Logger. Raft's Info level is chatty
// (every election and snapshot), which is what an operator wants to see, so
// levels map one to one; Trace becomes Debug.
func Hclog(l *slog.Logger, name string) hclog.Logger {
	if name != "" {
		l = l.With("component", name)
	}
	return &hclogAdapter{l: l, name: name}
}

type hclogAdapter struct {
	l       *slog.Logger
	name    string
	implied []interface{}
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...interface{}) {
	for i, a := range args {
		// hclog.Fmt defers formatting to the logger.
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	h.l.Log(context.Background(), slogLevel(level), msg, args...)
}
func (h *hclogAdapter) Trace(msg string, args ...interface{}) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...interface{}) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...interface{})  { h.Log(hclog.Info, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...interface{})  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...interface{}) { h.Log(hclog.Error, msg, args...) }

func (h *hclogAdapter) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), slogLevel(level))
}
func (h *hclogAdapter) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hclogAdapter) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hclogAdapter) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hclogAdapter) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hclogAdapter) IsError() bool { return h.enabled(hclog.Error) }

func (h *hclogAdapter) ImpliedArgs() []interface{} { return h.implied }
func (h *hclogAdapter) With(args ...interface{}) hclog.Logger {
	return &hclogAdapter{l: h.l.With(args...), name: h.name, implied: append(append([]interface{}{}, h.implied...), args...)}
}
func (h *hclogAdapter) Name() string { return h.name }
func (h *hclogAdapter) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return &hclogAdapter{l: h.l.With("component", name), name: name, implied: h.implied}
}
func (h *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{l: h.l.With("component", name), name: name, implied: h.implied}
}

// SetLevel is a no-op: the slog handler owns the level.
func (h *hclogAdapter) SetLevel(hclog.Level) {}
func (h *hclogAdapter) GetLevel() hclog.Level {
	switch {
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}
func (h *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return Std(h.l, "")
}
func (h *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &stdWriter{l: h.l}
}

// Std returns a standard-library logger whose lines go to l. Lines that start
// with a level tag such as "[DEBUG]" or "[WARN]" (memberlist writes those) are
// logged at that level with the tag removed.
func Std(l *slog.Logger, component string) *log.Logger {
	if component != "" {
		l = l.With("component", component)
	}
	return log.New(&stdWriter{l: l}, "", 0)
}

type stdWriter struct{ l *slog.Logger }

func (w *stdWriter) Write(p []byte) (int, error) {
	n := len(p)
	msg := string(bytes.TrimRight(p, "\r\n"))
	level := slog.LevelInfo
	for _, tag := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[TRACE]", slog.LevelDebug}, {"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError},
	} {
		if i := strings.Index(msg, tag.prefix); i >= 0 && i < 32 {
			level = tag.level
			msg = strings.TrimSpace(msg[i+len(tag.prefix):])
			break
		}
	}
	w.l.Log(context.Background(), level, msg)
	return n, nil
}
