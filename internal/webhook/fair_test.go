package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func testClients(o Options) *clients {
	o.BodyMemory = 1 << 20
	return newClients(fairDefaults(o))
}

// come admits a request from addr and returns its visit, or the refusal.
func come(cs *clients, addr string, now time.Time) (*visit, error) {
	v := &visit{addr: netip.MustParseAddr(addr)}
	return v, cs.admit(v, now)
}

func TestClientsForgetWhoOwesNothing(t *testing.T) {
	t.Parallel()
	cs := testClients(Options{})
	now := time.Now()
	for i := range 1000 {
		v, err := come(cs, fmt.Sprintf("203.0.%d.%d", i/256, i%256), now)
		if err != nil {
			t.Fatal(err)
		}
		cs.leave(v, false, now)
	}
	if n := cs.size(); n != 0 {
		t.Errorf("clients tracked after 1000 clean requests = %d, want 0", n)
	}
}

func TestClientsPenaltyBox(t *testing.T) {
	t.Parallel()
	cs := testClients(Options{PenaltyFailures: 3, PenaltyWindow: time.Minute, PenaltyDuration: 5 * time.Minute})
	t0 := time.Now()
	fail := func(at time.Time) bool {
		t.Helper()
		v, err := come(cs, "203.0.113.7", at)
		if err != nil {
			t.Fatalf("admit at %s: %v", at.Sub(t0), err)
		}
		return cs.leave(v, true, at)
	}
	// Two failures, then the window passes: the count starts again.
	fail(t0)
	fail(t0.Add(time.Second))
	if fail(t0.Add(61 * time.Second)) {
		t.Fatal("penalised for 3 failures spread over 61s, want a penalty for 3 within a minute only")
	}
	fail(t0.Add(62 * time.Second))
	if !fail(t0.Add(63 * time.Second)) {
		t.Fatal("not penalised after 3 failures within a minute")
	}
	_, err := come(cs, "203.0.113.7", t0.Add(64*time.Second))
	var re *reqError
	if !errors.As(err, &re) || re.code != http.StatusTooManyRequests || re.retryAfter != 299*time.Second {
		t.Fatalf("admit in the penalty box = %v, want 429 with retry after 299s", err)
	}
	if _, err := come(cs, "203.0.113.8", t0.Add(64*time.Second)); err != nil {
		t.Errorf("admit of another address = %v, want nil", err)
	}
	if v, err := come(cs, "203.0.113.7", t0.Add(63*time.Second+5*time.Minute)); err != nil {
		t.Errorf("admit once the penalty is over = %v, want nil", err)
	} else {
		cs.leave(v, false, t0.Add(63*time.Second+5*time.Minute))
	}
}

// An IPv6 client is its /64: addresses of one /64 share a penalty.
func TestClientsIPv6Prefix(t *testing.T) {
	t.Parallel()
	cs := testClients(Options{PenaltyFailures: 1})
	now := time.Now()
	v, _ := come(cs, "2001:db8:1:2::1", now)
	cs.leave(v, true, now)
	if _, err := come(cs, "2001:db8:1:2:ffff::9", now); err == nil {
		t.Error("admit from the same /64 after its penalty = nil, want 429")
	}
	if _, err := come(cs, "2001:db8:1:3::1", now); err != nil {
		t.Errorf("admit from the next /64 = %v, want nil", err)
	}
}

// The table stays bounded however many addresses fail, and the clients in
// the penalty box are the last to be forgotten.
func TestClientsBounded(t *testing.T) {
	t.Parallel()
	const limit = 100
	cs := testClients(Options{MaxClients: limit, PenaltyFailures: 1000})
	now := time.Now()
	boxed := netip.MustParseAddr("198.51.100.1")
	for range 1000 {
		v := &visit{addr: boxed}
		_ = cs.admit(v, now)
		cs.leave(v, true, now)
	}
	for i := range 100_000 {
		v, err := come(cs, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), now)
		if err != nil {
			t.Fatal(err)
		}
		cs.leave(v, true, now) // a strike: remembered until the window ends
		if n := cs.size(); n > limit {
			t.Fatalf("after %d failing clients the table holds %d, want at most %d", i+1, n, limit)
		}
	}
	if _, err := come(cs, boxed.String(), now); err == nil {
		t.Error("the client in the penalty box was forgotten before clients with strikes only")
	}
}

func TestLogLimiter(t *testing.T) {
	t.Parallel()
	l := newLogLimiter(5, 20)
	t0 := time.Now()
	for i := range 20 {
		if ok, _ := l.allow(t0); !ok {
			t.Fatalf("line %d of a burst of 20 held back", i+1)
		}
	}
	for range 100 {
		if ok, _ := l.allow(t0); ok {
			t.Fatal("line past the burst let through")
		}
	}
	// A second later five more lines may pass; the first says how many
	// were held back.
	ok, suppressed := l.allow(t0.Add(time.Second))
	if !ok || suppressed != 100 {
		t.Errorf("allow after 1s = %v, %d suppressed; want true, 100", ok, suppressed)
	}
	for range 4 {
		if ok, n := l.allow(t0.Add(time.Second)); !ok || n != 0 {
			t.Errorf("allow = %v, %d; want true, 0", ok, n)
		}
	}
	if ok, _ := l.allow(t0.Add(time.Second)); ok {
		t.Error("a sixth line in the second second let through")
	}
}
