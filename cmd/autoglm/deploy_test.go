package main

import (
	"os"
	"testing"

	"github.com/open-autoglm/autoglm/internal/config"
	"go.yaml.in/yaml/v3"
)

// deployEnv is the environment the deployment files document.
var deployEnv = map[string]string{
	"AUTOGLM_UPSTREAM_URL": "http://upstream:8000/v1",
	"AUTOGLM_POSTGRES_DSN": "postgres://autoglm:pw@postgres:5432/autoglm?sslmode=disable",
}

func parseDeployConfig(t *testing.T, name string, data []byte) *config.Config {
	t.Helper()
	cfg, err := config.Parse(data, func(k string) (string, bool) { v, ok := deployEnv[k]; return v, ok })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if cfg.Store.Driver != "postgres" || cfg.RateLimit.Redis.Addr == "" || cfg.Cache.Redis.Addr == "" {
		t.Errorf("%s: replicas must share PostgreSQL and Redis: store %q, limits %q, cache %q",
			name, cfg.Store.Driver, cfg.RateLimit.Redis.Addr, cfg.Cache.Redis.Addr)
	}
	if !cfg.Auth.Enabled {
		t.Errorf("%s: authentication is off on a shared listener", name)
	}
	return cfg
}

// TestComposeConfig decodes the docker-compose configuration strictly, so a renamed or
// removed option breaks the test, not a deployment.
func TestComposeConfig(t *testing.T) {
	data, err := os.ReadFile("../../deploy/compose/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parseDeployConfig(t, "compose", data)
}

// TestHelmValuesConfig decodes the chart's `config` value strictly, alone and with the canary
// values file merged over it as Helm merges values (maps merge, everything else is
// replaced), and checks the canary's split. Rendering the templates themselves is left to
// `helm lint` and `helm template` (docs/OPERATIONS.md).
func TestHelmValuesConfig(t *testing.T) {
	load := func(file string) map[string]any {
		data, err := os.ReadFile("../../deploy/helm/autoglm/" + file)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return v
	}
	base := load("values.yaml")
	configOf := func(name string, v map[string]any) *config.Config {
		data, err := yaml.Marshal(v["config"])
		if err != nil {
			t.Fatal(err)
		}
		return parseDeployConfig(t, name, data)
	}
	cfg := configOf("values.yaml", base)
	if cfg.Server.ShutdownTimeout.D().Seconds()+float64(base["preStopSleepSeconds"].(int)) >= float64(base["terminationGracePeriodSeconds"].(int)) {
		t.Errorf("terminationGracePeriodSeconds %v is not longer than the preStop sleep plus shutdown_timeout %v",
			base["terminationGracePeriodSeconds"], cfg.Server.ShutdownTimeout.D())
	}
	canary := configOf("values-canary.yaml", mergeValues(base, load("values-canary.yaml")))
	var split []config.SplitEntry
	for _, m := range canary.Models {
		if m.Name == "glm-4" {
			split = m.Split
		}
	}
	if len(split) != 2 || split[0].Weight+split[1].Weight != 100 || split[0].Model == split[1].Model {
		t.Errorf("canary split: %+v; want two models whose weights sum to 100", split)
	}
}

// mergeValues merges over into base as Helm merges values files.
func mergeValues(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeValues(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}
