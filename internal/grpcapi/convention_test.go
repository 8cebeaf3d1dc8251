package grpcapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/open-autoglm/autoglm/gen/autoglm/v1/autoglmv1connect"
	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/grpcapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// startConventionServer starts a server with authentication on, the inference service and
// the convention routes, on a loopback listener, in front of upstream; probe runs the
// backends' health probe once first (as serve does), so a dead upstream makes it not ready.
func startConventionServer(t *testing.T, upstream string, probe bool) string {
	t.Helper()
	cfg, err := config.Parse([]byte(`
models:
  - name: glm-4-flash
    backends:
      - type: openai
        base_url: `+upstream+`/v1
        model: upstream-glm
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	log := telemetry.NewLogger(&syncBuffer{}, telemetry.ParseLevel("debug"))
	if probe {
		reg.Probe(context.Background(), 2*time.Second, log)
	}
	cfg.Auth.Enabled = true
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(admintest.NewStore()), AdminKey: adminKey})
	if err != nil {
		t.Fatal(err)
	}
	var srv *server.Server
	opts := server.Options{Auth: a}
	o := grpcapi.Options{MaxBytes: cfg.Server.MaxBodyBytes, Auth: a}
	opts.Routes = append(grpcapi.Routes(func() http.Handler { return srv.Handler() }, o),
		grpcapi.ConventionRoutes(func() bool { return srv.Ready() }, o)...)
	srv = server.NewWith(cfg.Server, reg, log, opts)
	// Every convention route is open: probes carry no credential.
	for _, rt := range grpcapi.ConventionRoutes(func() bool { return true }, o) {
		if p := rt.Permission; p != auth.Public {
			t.Errorf("%s %s: permission %q; want public", rt.Method, rt.Pattern, p)
		}
	}
	return "http://" + testenv.ServeLoopback(t, srv.Serve)
}

// h2cClient speaks gRPC's HTTP/2 without TLS, as grpcurl -plaintext does.
func h2cClient(t *testing.T) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestReflectionListsAndDescribes(t *testing.T) {
	m := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 2}))
	t.Cleanup(m.Close)
	url := startConventionServer(t, m.URL, false)
	hc := h2cClient(t)
	// Over gRPC (grpcurl's protocol) and over Connect.
	for name, opts := range map[string][]connect.ClientOption{
		"grpc":    {connect.WithGRPC()},
		"connect": nil,
	} {
		t.Run(name, func(t *testing.T) {
			client := grpcreflect.NewClient(hc, url, opts...)
			stream := client.NewStream(context.Background())
			defer stream.Close()
			names, err := stream.ListServices()
			if err != nil {
				t.Fatalf("ListServices: %v", err)
			}
			for _, want := range []string{autoglmv1connect.InferenceServiceName, grpchealth.HealthV1ServiceName, grpcreflect.ReflectV1ServiceName} {
				if !slices.Contains(names, protoreflect.FullName(want)) {
					t.Errorf("services %v lack %s", names, want)
				}
			}
			files, err := stream.FileContainingSymbol(autoglmv1connect.InferenceServiceName)
			if err != nil {
				t.Fatalf("FileContainingSymbol: %v", err)
			}
			var methods []string
			for _, f := range files {
				for _, s := range f.GetService() {
					if f.GetPackage()+"."+s.GetName() == autoglmv1connect.InferenceServiceName {
						for _, m := range s.GetMethod() {
							methods = append(methods, m.GetName())
						}
					}
				}
			}
			slices.Sort(methods)
			if want := []string{"Chat", "ChatStream", "Complete", "Embed", "ListModels"}; !slices.Equal(methods, want) {
				t.Errorf("InferenceService methods %v; want %v", methods, want)
			}
			if _, err := stream.FileContainingSymbol("autoglm.v1.NoSuchService"); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("unknown symbol: %v; want not found", err)
			}
		})
	}
}

// TestReflectionV1Alpha calls the v1alpha procedure directly, as older grpcurl builds do.
func TestReflectionV1Alpha(t *testing.T) {
	m := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 2}))
	t.Cleanup(m.Close)
	url := startConventionServer(t, m.URL, false)
	// An HTTP client that rewrites the v1 path to v1alpha: the messages are the same.
	hc := h2cClient(t)
	alpha := connect.HTTPClient(doerFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path != "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" {
			return nil, errors.New("unexpected path " + r.URL.Path)
		}
		r.URL.Path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
		return hc.Do(r)
	}))
	stream := grpcreflect.NewClient(alpha, url, connect.WithGRPC()).NewStream(context.Background())
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("ListServices over v1alpha: %v", err)
	}
	if !slices.Contains(names, protoreflect.FullName(autoglmv1connect.InferenceServiceName)) {
		t.Errorf("services %v lack the inference service", names)
	}
}

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestHealthFollowsReadiness(t *testing.T) {
	live := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 2}))
	t.Cleanup(live.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connections to it are refused: the probe marks the backend down
	for _, tc := range []struct {
		name     string
		upstream string
		want     grpchealth.Status
	}{
		{"ready", live.URL, grpchealth.StatusServing},
		{"backend down", deadURL, grpchealth.StatusNotServing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startConventionServer(t, tc.upstream, true)
			// /readyz and the health service agree.
			resp, err := http.Get(url + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if ready := resp.StatusCode == http.StatusOK; ready != (tc.want == grpchealth.StatusServing) {
				t.Fatalf("/readyz %d; the test expects %v", resp.StatusCode, tc.want)
			}
			client := grpchealth.NewClient(h2cClient(t), url, connect.WithGRPC())
			for _, svc := range []string{"", autoglmv1connect.InferenceServiceName} {
				got, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: svc})
				if err != nil {
					t.Fatalf("Check(%q): %v", svc, err)
				}
				if got.Status != tc.want {
					t.Errorf("Check(%q) = %v; want %v", svc, got.Status, tc.want)
				}
			}
			if _, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: "acme.Unknown"}); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("Check(unknown service): %v; want not found", err)
			}
		})
	}
}
