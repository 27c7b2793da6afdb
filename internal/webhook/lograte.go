package webhook

import (
	"sync"
	"time"
)

// logLimiter is a token bucket for log lines: a flood of rejected requests
// must not fill the disk with their lines. Lines it holds back are counted
// and the count is reported on the next line it lets through.
type logLimiter struct {
	rate  float64 // lines per second
	burst float64

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

func newLogLimiter(perSecond, burst int) *logLimiter {
	return &logLimiter{rate: float64(perSecond), burst: float64(burst), tokens: float64(burst)}
}

// allow reports whether a line may be written now and, if so, how many
// were held back since the last one that was.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := now.Sub(l.last); !l.last.IsZero() && d > 0 {
		l.tokens = min(l.burst, l.tokens+d.Seconds()*l.rate)
	}
	if now.After(l.last) {
		l.last = now
	}
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
