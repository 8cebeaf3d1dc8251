package admin

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/store"
)

// Limits of a usage summary.
const (
	// summaryMaxRecords bounds the records one summary reads. A summary of a busier window
	// says so (Truncated) and covers the newest records only.
	summaryMaxRecords = 100_000
	// summaryMaxPoints bounds the points of a series; a smaller step is refused.
	summaryMaxPoints = 1000
	// summaryDefaultWindow is the window when the query names neither end.
	summaryDefaultWindow = 24 * time.Hour
	// summaryMaxWindow bounds the window.
	summaryMaxWindow = 366 * 24 * time.Hour
)

// summarySteps are the steps chosen when the query gives none: the smallest that keeps the
// series at or under summaryTargetPoints points.
var summarySteps = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour}

const summaryTargetPoints = 120

// UsagePoint is one step of a usage series: the requests that started in [Time, Time+step).
type UsagePoint struct {
	Time time.Time `json:"time"`
	UsageGroup
}

// UsageGroup sums the usage records of one group (a model, key, user or UTC day).
type UsageGroup struct {
	Name             string `json:"name,omitempty"`
	Requests         int64  `json:"requests"`
	Errors           int64  `json:"errors"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	// LatencyAvgMs and LatencyP95Ms are over the group's requests; 0 when it has none.
	LatencyAvgMs float64 `json:"latency_avg_ms"`
	LatencyP95Ms float64 `json:"latency_p95_ms"`
	// TokensPerSecond is the completion tokens over the time the requests took: a model's
	// throughput as its callers saw it (queueing and prompt processing included).
	TokensPerSecond float64 `json:"tokens_per_second"`

	latencies []time.Duration
}

// UsageSummary is the answer to GET /v1/admin/usage/summary and GET /v1/me/usage/summary: the
// usage records of a window, as a series over time and grouped by model, key, user and day.
// Errors count records whose status was 400 or more.
type UsageSummary struct {
	From        time.Time    `json:"from"`
	To          time.Time    `json:"to"`
	StepSeconds int64        `json:"step_seconds"`
	Totals      UsageGroup   `json:"totals"`
	Series      []UsagePoint `json:"series"`
	ByModel     []UsageGroup `json:"by_model"`
	ByKey       []UsageGroup `json:"by_key"`
	ByUser      []UsageGroup `json:"by_user"`
	ByDay       []UsageGroup `json:"by_day"`
	// Records is how many records were read; Truncated is true when the window held more than
	// a summary reads, and the oldest were left out.
	Records   int               `json:"records"`
	Truncated bool              `json:"truncated"`
	Filter    map[string]string `json:"filter"`
}

func (g *UsageGroup) add(r *store.UsageRecord) {
	g.Requests++
	if r.Status >= 400 {
		g.Errors++
	}
	g.PromptTokens += r.PromptTokens
	g.CompletionTokens += r.CompletionTokens
	g.latencies = append(g.latencies, r.Latency)
}

// finish computes the latency figures and drops the samples.
func (g *UsageGroup) finish() {
	if n := len(g.latencies); n > 0 {
		var sum time.Duration
		for _, d := range g.latencies {
			sum += d
		}
		slices.Sort(g.latencies)
		g.LatencyAvgMs = float64(sum) / float64(n) / 1e6
		g.LatencyP95Ms = float64(g.latencies[(n*95+99)/100-1]) / 1e6
		if sum > 0 {
			g.TokensPerSecond = float64(g.CompletionTokens) / sum.Seconds()
		}
	}
	g.latencies = nil
}

// summaryWindow reads from, to and step from the query. Without from and to the window is
// the last 24 hours; without step, the step is the smallest of summarySteps that keeps the
// series near summaryTargetPoints points.
func summaryWindow(r *http.Request, now time.Time) (from, to time.Time, step time.Duration, err error) {
	if from, err = timeParam(r, "from"); err != nil {
		return
	}
	if to, err = timeParam(r, "to"); err != nil {
		return
	}
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-summaryDefaultWindow)
	}
	if from.Year() < 1970 || to.Year() > 9999 {
		err = &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "from", Message: "the window must lie between 1970 and 9999"}
		return
	}
	if !from.Before(to) {
		err = &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "from", Message: "from must be before to"}
		return
	}
	span := to.Sub(from)
	if span > summaryMaxWindow {
		err = &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "from", Message: "the window is at most 366 days"}
		return
	}
	if s := r.URL.Query().Get("step"); s != "" {
		step, err = time.ParseDuration(s)
		if err != nil || step < time.Second {
			err = &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "step", Message: "step must be a duration of at least 1s, such as 5m or 1h"}
			return
		}
		if span/step >= summaryMaxPoints {
			err = &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "step",
				Message: "step is too small for the window: a series has at most 1000 points"}
			return
		}
	} else {
		step = summarySteps[len(summarySteps)-1]
		for _, s := range summarySteps {
			if span/s <= summaryTargetPoints {
				step = s
				break
			}
		}
		if span/step >= summaryMaxPoints {
			step = span/summaryMaxPoints + time.Second
		}
	}
	return from.UTC(), to.UTC(), step, nil
}

// summarize reads the records of f in the window and sums them.
func (a *API) summarize(w http.ResponseWriter, r *http.Request, f store.UsageFilter) error {
	from, to, step, err := summaryWindow(r, a.now())
	if err != nil {
		return err
	}
	f.From, f.To = from, to
	// Points start on multiples of step (counted from the zero time, so whole hours and days
	// fall on UTC hours and midnights), so that a chart's buckets do not move as the window
	// slides.
	first := from.Truncate(step)
	n := int(to.Sub(first)/step) + 1
	if to.Sub(first)%step == 0 {
		n--
	}
	sum := UsageSummary{From: from, To: to, StepSeconds: int64(step / time.Second), Series: make([]UsagePoint, n)}
	for i := range sum.Series {
		sum.Series[i].Time = first.Add(time.Duration(i) * step)
	}
	models, keys, users, days := map[string]*UsageGroup{}, map[string]*UsageGroup{}, map[string]*UsageGroup{}, map[string]*UsageGroup{}
	group := func(m map[string]*UsageGroup, name string) *UsageGroup {
		g := m[name]
		if g == nil {
			g = &UsageGroup{Name: name}
			m[name] = g
		}
		return g
	}
	q := store.UsageQuery{UsageFilter: f, ListParams: store.ListParams{Limit: store.MaxLimit}}
	for {
		page, err := a.st.ListUsage(r.Context(), q)
		if err != nil {
			return storeError(err, "usage")
		}
		for i := range page.Items {
			rec := &page.Items[i]
			if sum.Records == summaryMaxRecords {
				sum.Truncated = true
				break
			}
			sum.Records++
			sum.Totals.add(rec)
			if i := int(rec.Time.Sub(first) / step); i >= 0 && i < len(sum.Series) {
				sum.Series[i].add(rec)
			}
			group(models, rec.Model).add(rec)
			group(keys, rec.KeyID).add(rec)
			group(users, rec.UserID).add(rec)
			group(days, rec.Time.UTC().Format(time.DateOnly)).add(rec)
		}
		if sum.Truncated || page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	sum.Totals.finish()
	for i := range sum.Series {
		sum.Series[i].finish()
	}
	sum.ByModel, sum.ByKey, sum.ByUser, sum.ByDay = sortedGroups(models, false), sortedGroups(keys, false), sortedGroups(users, false), sortedGroups(days, true)
	sum.Filter = map[string]string{}
	for k, v := range map[string]string{"key_id": f.KeyID, "user_id": f.UserID, "model": f.Model} {
		if v != "" && v != noUsage {
			sum.Filter[k] = v
		}
	}
	return httpapi.WriteData(w, r, http.StatusOK, sum)
}

// sortedGroups lists groups by requests, most first (by name when byName: days in order).
func sortedGroups(m map[string]*UsageGroup, byName bool) []UsageGroup {
	out := make([]UsageGroup, 0, len(m))
	for _, g := range m {
		g.finish()
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b UsageGroup) int {
		if !byName && a.Requests != b.Requests {
			if a.Requests > b.Requests {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func (a *API) usageSummary(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	return a.summarize(w, r, store.UsageFilter{KeyID: q.Get("key_id"), UserID: q.Get("user_id"), Model: q.Get("model")})
}

func (a *API) myUsageSummary(w http.ResponseWriter, r *http.Request) error {
	f, err := selfUsageFilter(r)
	if err != nil {
		return err
	}
	return a.summarize(w, r, f)
}
