package task

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/store/sqldb"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// Webhook headers.
const (
	HeaderDelivery  = "X-AutoGLM-Delivery"
	HeaderSignature = "X-AutoGLM-Signature"
	HeaderTaskID    = "X-AutoGLM-Task"
)

// maxConcurrentDeliveries bounds the webhook requests one process has in flight.
const maxConcurrentDeliveries = 16

// Sign returns the X-AutoGLM-Signature value for body sent at t: "t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>.<body>" under secret>". Receivers recompute it and should refuse old
// timestamps to stop replays.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature made by Sign, refusing timestamps further than tolerance from now.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range bytes.Split([]byte(header), []byte{','}) {
		k, v, _ := bytes.Cut(bytes.TrimSpace(part), []byte{'='})
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("webhook signature: malformed header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook signature: timestamp outside the tolerance")
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("webhook signature: mismatch")
	}
	return nil
}

// errRefused marks a destination the allow-list refuses; such a delivery is not retried.
var errRefused = errors.New("webhook destination refused")

// webhookClient is the HTTP client of deliveries. The destination is checked in the dialer's
// Control hook, on the address actually being connected to after DNS resolution, so a name
// that resolves to an internal address (or changes to one between checks) is refused.
// Proxies from the environment are not used, and redirects are not followed: each would let
// the request reach an address that was not checked.
func (s *Service) webhookClient() *http.Client {
	d := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: unparsable address %q", errRefused, address)
			}
			if why := s.dest.check(ap); why != "" {
				if why == ownListener {
					return fmt.Errorf("%w: %s is %s", errRefused, ap, why)
				}
				return fmt.Errorf("%w: %s is not a global unicast address (%s; allow it with tasks.webhook_allow)", errRefused, ap, why)
			}
			return nil
		},
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// deliverLoop sends due webhook deliveries until ctx ends: woken after each terminal
// transition, and every poll interval for retries and other replicas' deliveries.
func (s *Service) deliverLoop(ctx context.Context) {
	client := s.webhookClient()
	defer client.CloseIdleConnections()
	wake, unsub := s.hub.subscribe(deliveryTopic)
	defer unsub()
	t := time.NewTimer(s.poll)
	defer t.Stop()
	due := func() (time.Time, error) { return s.nextDelivery(ctx) }
	sem := make(chan struct{}, maxConcurrentDeliveries)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		ids, err := s.dueDeliveries(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("webhook: listing due deliveries failed", "err", err)
		}
		for _, id := range ids {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.deliver(ctx, client, id)
				// A retry's due time is new to the loop: let it look again.
				s.hub.notify(deliveryTopic)
			}()
		}
		wait := s.poll
		if len(ids) < dueDeliveriesMax {
			wait = sqldb.PollWait(s.db.Dialect, s.poll, due)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
	}
}

// dueDeliveriesMax is the most deliveries one look at the queue lists.
const dueDeliveriesMax = 256

// nextDelivery is when the earliest pending delivery falls due (the zero time: none is
// pending), for the sender's wait on SQLite (sqldb.PollWait): at its next attempt, or when
// the lease of an attempt under way runs out, whichever is later.
func (s *Service) nextDelivery(ctx context.Context) (time.Time, error) {
	return sqldb.ScanDue(s.polls.QueryRowContext(ctx, s.db.q(`SELECT MIN(CASE WHEN lease_until >= next_at THEN lease_until + 1 ELSE next_at END)
		FROM task_deliveries WHERE status = 'pending'`)), time.UnixMicro)
}

// dueDeliveries lists pending deliveries whose time has come and that nobody is sending.
func (s *Service) dueDeliveries(ctx context.Context) ([]string, error) {
	now := time.Now().UnixMicro()
	rows, err := s.polls.QueryContext(ctx, s.db.q(`SELECT task_id FROM task_deliveries WHERE status = 'pending' AND next_at <= ? AND lease_until < ?
		ORDER BY next_at LIMIT `+strconv.Itoa(dueDeliveriesMax)), now, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// deliver makes one attempt of a task's delivery, if it can lease it, and records the
// outcome: delivered on a 2xx answer; otherwise retried after an exponential backoff until
// the retry window closes, then failed. A refused destination fails at once. A crash between
// the attempt and its record means the attempt is made again: delivery is at least once,
// always with the same delivery id.
func (s *Service) deliver(ctx context.Context, client *http.Client, taskID string) {
	now := time.Now()
	timeout := s.cfg.WebhookTimeout.D()
	l, leased, err := s.db.leaseDelivery(ctx, s.db.W, taskID, now.Add(timeout+5*time.Second).UnixMicro(), now.UnixMicro())
	if err != nil || !leased {
		if err != nil && ctx.Err() == nil {
			s.log.Warn("webhook: lease failed", "task", taskID, "err", err)
		}
		return
	}
	deliveryID, attempts, deadline := l.id, l.attempts, l.deadline

	start := time.Now()
	sctx, span := telemetry.StartRoot(ctx, s.tracer, telemetry.SpanWebhook, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(telemetry.AttrTaskID.String(taskID), telemetry.AttrWebhookTry.Int64(attempts+1)))
	code, sendErr := s.post(sctx, client, l.url, deliveryID, taskID, []byte(l.body), timeout)
	if ctx.Err() != nil {
		span.End()
		return // shutting down: the lease runs out and the attempt is made again
	}
	a := Attempt{At: start.UTC(), StatusCode: code, DurationMS: time.Since(start).Milliseconds()}
	if sendErr != nil {
		a.Error = sendErr.Error()
	} else if code/100 != 2 {
		a.Error = fmt.Sprintf("the receiver answered %d", code)
	}
	n := attempts + 1
	status, next := "pending", int64(0)
	switch {
	case a.Error == "":
		status = "delivered"
	case errors.Is(sendErr, errRefused):
		status = "failed"
	default:
		backoff := s.cfg.WebhookBackoff.D() << min(n-1, 30)
		backoff = min(backoff, s.cfg.WebhookMaxBackoff.D())
		next = time.Now().Add(backoff).UnixMicro()
		if next > deadline {
			status = "failed"
		}
	}
	outcome := status
	if status == "pending" {
		outcome = "retry"
	}
	s.obs.webhooks.WithLabelValues(outcome).Inc()
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", code), attribute.String("autoglm.webhook.outcome", outcome))
		if a.Error != "" {
			telemetry.Fail(span, outcome, "delivery attempt failed")
		}
	}
	span.End()
	err = s.db.inTx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		return s.db.recordAttempt(ctx, tx, taskID, n, a, status, next, time.Now().UnixMicro())
	})
	if err != nil {
		s.log.Warn("webhook: recording the attempt failed; it will be made again", "task", taskID, "err", err)
		return
	}
	if a.Error != "" {
		s.log.Info("webhook attempt failed", "task", taskID, "delivery", deliveryID, "attempt", n, "status", status, "err", a.Error)
	}
}

// post sends one signed delivery and returns the answer's status.
func (s *Service) post(ctx context.Context, client *http.Client, url, deliveryID, taskID string, body []byte, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errRefused, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "autoglm-webhook/1")
	req.Header.Set(HeaderDelivery, deliveryID)
	req.Header.Set(HeaderTaskID, taskID)
	req.Header.Set(HeaderSignature, Sign([]byte(s.cfg.WebhookSecret), time.Now(), body))
	telemetry.InjectUpstream(ctx, req.Header)
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errRefused) {
			return 0, errRefused0(err)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// errRefused0 keeps the refusal's own message (the dial error wraps it in transport detail).
func errRefused0(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
