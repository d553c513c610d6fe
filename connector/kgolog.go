package connector

import (
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type (
	kmsgReq  = kmsg.OffsetCommitRequest
	kmsgResp = kmsg.OffsetCommitResponse
)

// kgoLogger sends kgo's logs to zap one level lower than kgo's own (kgo's Info is chatty
// about every group and connection event): kgo Error → zap Warn, Warn → Info, Info → Debug,
// Debug → dropped.
type kgoLogger struct{ l *zap.Logger }

func newKgoLogger(l *zap.Logger) kgo.Logger { return kgoLogger{l: l} }

func (k kgoLogger) Level() kgo.LogLevel {
	switch {
	case k.l.Core().Enabled(zapcore.DebugLevel):
		return kgo.LogLevelInfo
	case k.l.Core().Enabled(zapcore.InfoLevel):
		return kgo.LogLevelWarn
	case k.l.Core().Enabled(zapcore.WarnLevel):
		return kgo.LogLevelError
	default:
		return kgo.LogLevelNone
	}
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	fields := make([]zap.Field, 0, len(keyvals)/2)
	for i := 0; i+1 < len(keyvals); i += 2 {
		key, _ := keyvals[i].(string)
		fields = append(fields, zap.Any(key, keyvals[i+1]))
	}
	switch level {
	case kgo.LogLevelError:
		k.l.Warn(msg, fields...)
	case kgo.LogLevelWarn:
		k.l.Info(msg, fields...)
	case kgo.LogLevelInfo:
		k.l.Debug(msg, fields...)
	}
}
