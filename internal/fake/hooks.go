package fake

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file fakes GitHub's webhook delivery log: listing a hook's recent
// deliveries and asking for a redelivery, for repository hooks
// (/repos/{o}/{r}/hooks/{id}/deliveries), organisation hooks
// (/orgs/{org}/hooks/{id}/deliveries) and the App's own hook
// (/app/hook/deliveries, authenticated with the App JWT).
//
// A hook is named as gh.Hook.String writes it: "repo:owner/name#id",
// "org:owner#id" or "app". (The fake does not import package gh: gh's tests
// import the fake.)

// HookDeliveryRecord is one delivery attempt in a hook's log. Every attempt,
// the original and each redelivery, is its own record with its own id and
// the GUID of the original.
type HookDeliveryRecord struct {
	GUID        string
	DeliveredAt time.Time
	// StatusCode is the receiver's HTTP status; 0 means it never answered
	// (GitHub then reports "failed to connect to host").
	StatusCode     int
	Redelivery     bool
	Event, Action  string
	InstallationID int64
	RepositoryID   int64
}

// ghHookRetention is how long GitHub keeps (lists and redelivers) a
// delivery on github.com.
const ghHookRetention = 72 * time.Hour

// ghHooks is the delivery log of every hook, guarded by GitHub.mu.
type ghHooks struct {
	byRef       map[string]*ghHook
	onRedeliver func(hook string, d HookDeliveryRecord)
	// redeliveryStatus is the status_code of attempts made on request.
	redeliveryStatus int
}

type ghHook struct {
	items    []*ghHookItem // newest first
	requests []int64       // delivery ids POSTed to .../attempts, in order
}

type ghHookItem struct {
	id  int64
	rec HookDeliveryRecord
}

// hookLog returns the hooks' state, creating it on first use. Caller holds g.mu.
func (g *GitHub) hookLog() *ghHooks {
	if g.hooks == nil {
		g.hooks = &ghHooks{byRef: make(map[string]*ghHook), redeliveryStatus: http.StatusOK}
	}
	return g.hooks
}

// hook returns the hook named ref, creating it if create is set. Caller holds g.mu.
func (g *GitHub) hook(ref string, create bool) *ghHook {
	hs := g.hookLog()
	h := hs.byRef[ref]
	if h == nil && create {
		h = &ghHook{}
		hs.byRef[ref] = h
	}
	return h
}

// add inserts it keeping the log newest first; among equal times the
// later-added item comes first, as GitHub orders by delivery id.
func (h *ghHook) add(it *ghHookItem) {
	i := sort.Search(len(h.items), func(i int) bool {
		return !h.items[i].rec.DeliveredAt.After(it.rec.DeliveredAt)
	})
	h.items = append(h.items, nil)
	copy(h.items[i+1:], h.items[i:])
	h.items[i] = it
}

// AddHook makes hook ("repo:o/r#12", "org:o#7" or "app") exist with no
// deliveries; listing an unknown hook answers 404.
func (g *GitHub) AddHook(hook string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hook(hook, true)
}

// AddHookDelivery records a delivery attempt to hook ("repo:o/r#12",
// "org:o#7" or "app"), creating the hook if needed, and returns the
// attempt's id. A zero DeliveredAt means now.
func (g *GitHub) AddHookDelivery(hook string, d HookDeliveryRecord) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = time.Now()
	}
	d.DeliveredAt = d.DeliveredAt.UTC()
	it := &ghHookItem{id: g.id(), rec: d}
	g.hook(hook, true).add(it)
	return it.id
}

// RedeliveryRequests returns the delivery ids POSTed to hook's
// .../deliveries/{id}/attempts and accepted, in order.
func (g *GitHub) RedeliveryRequests(hook string) []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hook(hook, false)
	if h == nil {
		return nil
	}
	return append([]int64(nil), h.requests...)
}

// SetOnRedeliver sets f to be called, in a goroutine of its own and without
// any lock held, with the hook and the record of the redelivered attempt
// each time a redelivery is accepted, so that an end-to-end test can deliver
// the payload to hookwise as GitHub would. nil removes it.
func (g *GitHub) SetOnRedeliver(f func(hook string, d HookDeliveryRecord)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hookLog().onRedeliver = f
}

// SetRedeliveryStatus sets the status_code recorded for the attempts that
// redelivery requests make from now on; default 200. 0 records an attempt
// that could not connect.
func (g *GitHub) SetRedeliveryStatus(code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hookLog().redeliveryStatus = code
}

// ghIsHookPath reports whether s (the path's segments) is under a hook:
// repos/{o}/{r}/hooks/..., orgs/{org}/hooks/... or app/hook/....
func ghIsHookPath(s []string) bool {
	switch {
	case len(s) >= 2 && s[0] == "app" && s[1] == "hook":
		return true
	case len(s) >= 3 && s[0] == "orgs" && s[2] == "hooks":
		return true
	case len(s) >= 4 && s[0] == "repos" && s[3] == "hooks":
		return true
	}
	return false
}

// routeHook serves the delivery endpoints of a hook. Caller holds g.mu.
func (g *GitHub) routeHook(req *ghRequest, s []string, now time.Time) {
	var ref string
	var rest []string
	switch s[0] {
	case "app":
		ref, rest = "app", s[2:]
	case "orgs":
		id, ok := ghHookID(s, 3)
		if !ok {
			ghError(req.w, http.StatusNotFound, "Not Found")
			return
		}
		ref, rest = "org:"+s[1]+"#"+id, s[4:]
	default:
		id, ok := ghHookID(s, 4)
		if !ok {
			ghError(req.w, http.StatusNotFound, "Not Found")
			return
		}
		ref, rest = "repo:"+s[1]+"/"+s[2]+"#"+id, s[5:]
	}
	h := g.hook(ref, false)
	m := req.r.Method
	switch {
	case h == nil:
		ghError(req.w, http.StatusNotFound, "Not Found")
	case len(rest) == 1 && rest[0] == "deliveries" && m == http.MethodGet:
		g.listHookDeliveries(req, h, now)
	case len(rest) == 3 && rest[0] == "deliveries" && rest[2] == "attempts" && m == http.MethodPost:
		g.redeliver(req, ref, h, rest[1], now)
	default:
		ghError(req.w, http.StatusNotFound, "Not Found")
	}
}

// ghHookID returns s[i] normalised as a hook id.
func ghHookID(s []string, i int) (string, bool) {
	if len(s) <= i {
		return "", false
	}
	id, err := strconv.ParseInt(s[i], 10, 64)
	if err != nil || id <= 0 {
		return "", false
	}
	return strconv.FormatInt(id, 10), true
}

// ghHookDeliveryJSON is a delivery as GitHub lists it.
type ghHookDeliveryJSON struct {
	ID             int64   `json:"id"`
	GUID           string  `json:"guid"`
	DeliveredAt    string  `json:"delivered_at"`
	Redelivery     bool    `json:"redelivery"`
	Duration       float64 `json:"duration"`
	Status         string  `json:"status"`
	StatusCode     int     `json:"status_code"`
	Event          string  `json:"event"`
	Action         *string `json:"action"`
	InstallationID *int64  `json:"installation_id"`
	RepositoryID   *int64  `json:"repository_id"`
	ThrottledAt    *string `json:"throttled_at"`
}

// ghCursorPrefix starts every cursor, like GitHub's "v1_…".
const ghCursorPrefix = "v1_"

// listHookDeliveries answers one page of h's log, newest first. The
// cursor names the last item of the previous page, so attempts made
// between two requests (they go to the top) shift nothing.
func (g *GitHub) listHookDeliveries(req *ghRequest, h *ghHook, now time.Time) {
	q := req.r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	start := 0
	if c := q.Get("cursor"); c != "" {
		id, err := strconv.ParseInt(strings.TrimPrefix(c, ghCursorPrefix), 10, 64)
		start = -1
		for i, it := range h.items {
			if err == nil && strings.HasPrefix(c, ghCursorPrefix) && it.id == id {
				start = i + 1
				break
			}
		}
		if start < 0 {
			ghError(req.w, http.StatusBadRequest, "Invalid cursor")
			return
		}
	}
	oldest := now.Add(-ghHookRetention)
	end := len(h.items)
	for i := start; i < len(h.items); i++ {
		if h.items[i].rec.DeliveredAt.Before(oldest) {
			end = i // no longer kept
			break
		}
	}
	start = min(start, end)
	last := min(start+per, end)
	list := make([]ghHookDeliveryJSON, 0, last-start)
	for _, it := range h.items[start:last] {
		list = append(list, ghHookDeliveryToJSON(it))
	}
	if last < end {
		// As GitHub writes it: <…/deliveries?cursor=v1_…&per_page=N>; rel="next".
		next := req.base + req.r.URL.EscapedPath() + "?cursor=" + ghCursorPrefix + strconv.FormatInt(h.items[last-1].id, 10) +
			"&per_page=" + strconv.Itoa(per)
		req.w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	ghWriteJSON(req.w, http.StatusOK, list)
}

func ghHookDeliveryToJSON(it *ghHookItem) ghHookDeliveryJSON {
	r := it.rec
	d := ghHookDeliveryJSON{
		ID:          it.id,
		GUID:        r.GUID,
		DeliveredAt: r.DeliveredAt.UTC().Format(time.RFC3339),
		Redelivery:  r.Redelivery,
		Duration:    0.27,
		Status:      ghHookStatus(r.StatusCode),
		StatusCode:  r.StatusCode,
		Event:       r.Event,
	}
	if r.Action != "" {
		d.Action = &r.Action
	}
	if r.InstallationID != 0 {
		d.InstallationID = &r.InstallationID
	}
	if r.RepositoryID != 0 {
		d.RepositoryID = &r.RepositoryID
	}
	return d
}

// ghHookStatus is the status text GitHub shows for an attempt.
func ghHookStatus(code int) string {
	switch {
	case code == 0:
		return "failed to connect to host"
	case code >= 200 && code <= 299:
		return "OK"
	}
	return "Invalid HTTP Response: " + strconv.Itoa(code)
}

// redeliver accepts POST .../deliveries/{id}/attempts: it records a new
// attempt (redelivery, same GUID, delivered now) at the top of the log and
// answers 202 {}. Deliveries GitHub no longer keeps are not found.
func (g *GitHub) redeliver(req *ghRequest, ref string, h *ghHook, idText string, now time.Time) {
	id, err := strconv.ParseInt(idText, 10, 64)
	var orig *ghHookItem
	for _, it := range h.items {
		if err == nil && it.id == id {
			orig = it
			break
		}
	}
	if orig == nil || orig.rec.DeliveredAt.Before(now.Add(-ghHookRetention)) {
		ghError(req.w, http.StatusNotFound, "Not Found")
		return
	}
	hs := g.hookLog()
	h.requests = append(h.requests, id)
	attempt := orig.rec
	attempt.Redelivery = true
	attempt.DeliveredAt = now.UTC()
	attempt.StatusCode = hs.redeliveryStatus
	h.add(&ghHookItem{id: g.id(), rec: attempt})
	if f := hs.onRedeliver; f != nil {
		rec := orig.rec
		go f(ref, rec) // ServeHTTP holds g.mu until it returns
	}
	ghWriteJSON(req.w, http.StatusAccepted, struct{}{})
}
