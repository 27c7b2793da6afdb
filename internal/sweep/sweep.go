// Package sweep recovers webhook deliveries GitHub failed to make. GitHub
// never redelivers by itself: a delivery that met hookwise down, or a
// network failure, stays failed in the hook's log until someone asks for a
// redelivery, and GitHub keeps that log for three days only. The Sweeper
// reads the log of each of our hooks and asks again for every event that
// reached neither hookwise's store nor a 2xx answer.
package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hookwise/hookwise/internal/gh"
)

// GitHub is what the sweeper needs of GitHub (implemented by *gh.Client).
type GitHub interface {
	HookDeliveries(ctx context.Context, h gh.Hook, since time.Time) ([]gh.HookDelivery, error)
	Redeliver(ctx context.Context, h gh.Hook, id int64) error
}

var _ GitHub = (*gh.Client)(nil)

// Store reports which GUIDs hookwise already holds (implemented by
// *store.Store).
type Store interface {
	KnownGUIDs(ctx context.Context, guids []string) (map[string]bool, error)
}

// MaxWindow is how far back GitHub (github.com) lets a delivery be
// redelivered; older deliveries are gone from the hook's log.
const MaxWindow = 72 * time.Hour

// DefaultGrace is the default Sweeper.Grace.
const DefaultGrace = time.Minute

// Sweeper requests redeliveries of the deliveries hookwise missed.
type Sweeper struct {
	GitHub GitHub
	Store  Store
	// Hooks are the hooks that deliver to hookwise, in order of preference:
	// an event that failed on several of them is requested again on the
	// first one only (see Sweep).
	Hooks []gh.Hook
	// Window bounds how far back a sweep looks; 0 or more than MaxWindow
	// means MaxWindow.
	Window time.Duration
	// Grace leaves alone an event whose newest attempt is younger than this,
	// since GitHub may still be making it (or a redelivery we asked for);
	// 0 means DefaultGrace.
	Grace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per hook swept; nil discards.
	Logger *slog.Logger
}

// Result is what a sweep found and did for one hook. Every failed GUID is
// counted in at most one of AlreadyStored, Recent, Duplicate and
// Redelivered: in none when its request failed, or when an earlier failure
// ended the hook's sweep (see Err).
type Result struct {
	Hook gh.Hook
	// Scanned is how many delivery attempts the hook's log holds in the
	// window; GUIDs how many distinct events they are.
	Scanned, GUIDs int
	// Failed is how many of those events have no 2xx attempt.
	Failed int
	// AlreadyStored is how many failed events hookwise holds anyway:
	// received through another hook, or stored before it answered an error.
	AlreadyStored int
	// Recent is how many failed events were left for a later sweep because
	// their newest attempt is younger than the grace period.
	Recent int
	// Duplicate is how many failed events were requested on an earlier hook
	// of this sweep.
	Duplicate int
	// Redelivered is how many redeliveries GitHub accepted (in a dry run:
	// would have been requested), and Requested their GUIDs, oldest event
	// first.
	Redelivered int
	Requested   []string
	// Err is why the hook could not be swept (fully); nil on success.
	Err error
}

// event is one GUID's attempts on one hook.
type event struct {
	guid   string
	ok     bool            // some attempt got a 2xx
	first  time.Time       // oldest attempt seen, to request in event order
	newest gh.HookDelivery // the attempt to redeliver
}

// Sweep scans each hook's deliveries since since (clamped to Now()-Window)
// and requests a redelivery of each event (GUID) that has no 2xx attempt
// and no stored row, at most once per GUID in this sweep. The attempt
// redelivered is the event's newest. With dryRun it requests nothing and
// reports what it would request.
//
// GUIDs, not (hook, GUID) pairs, decide. GitHub gives one event the same
// GUID on every hook subscribed to it, and hookwise stores a delivery per
// (hook, GUID), but what matters is whether the event reached hookwise at
// all: if it came in through any hook it is handled, and a redelivery on
// another hook would only make a second copy of it. Likewise an event that
// failed on several of our hooks is requested on the first of them (in
// Hooks order) only; one delivery is enough, and if that one fails again
// the next sweep asks again.
//
// A hook that fails is reported in its Result and the sweep goes on with
// the others. Sweep itself fails only when misconfigured or when ctx ends;
// it then returns the results gathered so far.
func (s *Sweeper) Sweep(ctx context.Context, since time.Time, dryRun bool) ([]Result, error) {
	if s.GitHub == nil || s.Store == nil {
		return nil, errors.New("sweep: GitHub and Store must be set")
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	window := s.Window
	if window <= 0 || window > MaxWindow {
		window = MaxWindow
	}
	if oldest := now.Add(-window); since.Before(oldest) {
		since = oldest
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	requested := make(map[string]bool) // GUIDs asked for (or that would be) in this sweep
	var results []Result
	for _, h := range s.Hooks {
		if err := ctx.Err(); err != nil {
			return results, fmt.Errorf("sweep: %w", err)
		}
		r := s.sweepHook(ctx, h, since, now, dryRun, requested)
		log.LogAttrs(ctx, slog.LevelInfo, "redelivery sweep",
			slog.String("hook", h.String()), slog.Bool("dry_run", dryRun),
			slog.Int("scanned", r.Scanned), slog.Int("guids", r.GUIDs), slog.Int("failed", r.Failed),
			slog.Int("already_stored", r.AlreadyStored), slog.Int("recent", r.Recent),
			slog.Int("duplicate", r.Duplicate), slog.Int("redelivered", r.Redelivered),
			slog.Bool("incomplete", r.Err != nil))
		results = append(results, r)
	}
	return results, nil
}

// sweepHook sweeps one hook; requested carries the GUIDs asked for on
// earlier hooks and receives this hook's.
func (s *Sweeper) sweepHook(ctx context.Context, h gh.Hook, since, now time.Time, dryRun bool, requested map[string]bool) Result {
	r := Result{Hook: h}
	ds, err := s.GitHub.HookDeliveries(ctx, h, since)
	if err != nil {
		r.Err = err
		return r
	}
	r.Scanned = len(ds)
	byGUID := eventsOf(ds)
	r.GUIDs = len(byGUID)
	failed := failedEvents(byGUID)
	r.Failed = len(failed)
	if len(failed) == 0 {
		return r
	}
	guids := make([]string, len(failed))
	for i, e := range failed {
		guids[i] = e.guid
	}
	known, err := s.Store.KnownGUIDs(ctx, guids)
	if err != nil {
		r.Err = fmt.Errorf("sweep %s: %w", h, err)
		return r
	}
	s.redeliver(ctx, h, failed, known, requested, now, dryRun, &r)
	return r
}

// eventsOf groups a hook's delivery attempts by GUID: one event each,
// with its first attempt, its newest, and whether any succeeded.
func eventsOf(ds []gh.HookDelivery) map[string]*event {
	byGUID := make(map[string]*event)
	for _, d := range ds {
		if d.GUID == "" {
			continue
		}
		e := byGUID[d.GUID]
		if e == nil {
			e = &event{guid: d.GUID, first: d.DeliveredAt, newest: d}
			byGUID[d.GUID] = e
		}
		if d.StatusCode >= 200 && d.StatusCode <= 299 {
			e.ok = true
		}
		if d.DeliveredAt.Before(e.first) {
			e.first = d.DeliveredAt
		}
		if d.DeliveredAt.After(e.newest.DeliveredAt) || (d.DeliveredAt.Equal(e.newest.DeliveredAt) && d.ID > e.newest.ID) {
			e.newest = d
		}
	}
	return byGUID
}

// failedEvents are the events no attempt of which succeeded, oldest first.
func failedEvents(byGUID map[string]*event) []*event {
	var failed []*event
	for _, e := range byGUID {
		if !e.ok {
			failed = append(failed, e)
		}
	}
	slices.SortFunc(failed, func(a, b *event) int {
		return cmp.Or(a.first.Compare(b.first), cmp.Compare(a.guid, b.guid))
	})
	return failed
}

// redeliver asks GitHub again for each failed event that is not stored,
// not asked for in this sweep already, and not so recent that GitHub may
// still be retrying it; it counts each kind in r.
func (s *Sweeper) redeliver(ctx context.Context, h gh.Hook, failed []*event, known, requested map[string]bool, now time.Time, dryRun bool, r *Result) {
	grace := s.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	var errs []error
	for _, e := range failed {
		switch {
		case known[e.guid]:
			r.AlreadyStored++
			continue
		case requested[e.guid]:
			r.Duplicate++
			continue
		case now.Sub(e.newest.DeliveredAt) < grace:
			r.Recent++
			continue
		}
		if !dryRun {
			if err := s.GitHub.Redeliver(ctx, h, e.newest.ID); err != nil {
				errs = append(errs, fmt.Errorf("guid %s: %w", e.guid, err))
				if stopHook(ctx, err) {
					break
				}
				continue
			}
		}
		requested[e.guid] = true
		r.Redelivered++
		r.Requested = append(r.Requested, e.guid)
	}
	r.Err = errors.Join(errs...)
}

// stopHook reports whether a failed redelivery request should end the
// hook's sweep: when the next request would fail the same way (rate
// limits, GitHub or the network down, the context over). A refusal of one
// delivery (404, 422) concerns that delivery only.
func stopHook(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var ge *gh.Error
	if errors.As(err, &ge) {
		return ge.Temporary() || ge.Status == 401 || ge.Status == 403
	}
	return true
}
