package gossip

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// memberlistLogger turns memberlist's log lines ("[WARN] memberlist: …")
// into slog records at the level they name, so its messages reach the
// node's log with the rest and can be filtered alike.
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	s := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{
		"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError,
	} {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			s, level = strings.TrimSpace(rest), l
			break
		}
	}
	s = strings.TrimPrefix(s, "memberlist: ")
	w.l.Log(context.Background(), level, "memberlist", "detail", s)
	return len(p), nil
}
