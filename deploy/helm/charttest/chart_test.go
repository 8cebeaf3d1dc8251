// Package charttest lints and renders the autoglm Helm chart with Helm's own Go packages (what
// `helm lint --strict` and `helm template` run), and decodes every rendered manifest strictly
// into the Kubernetes API types, so that a misspelt field or a wrong type fails here rather
// than in a cluster. It is a module of its own: the server does not carry Helm's and
// Kubernetes' dependencies.
package charttest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "../autoglm"

// valueFiles are the values the chart is checked with: the defaults, and the canary example
// over them (as `helm template -f values-canary.yaml`).
var valueFiles = map[string][]string{
	"default": nil,
	"canary":  {"values-canary.yaml"},
}

// kubeVersion is the oldest Kubernetes the chart supports (Chart.yaml's kubeVersion).
var kubeVersion = chartutil.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}

func values(t *testing.T, files []string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, f))
		if err != nil {
			t.Fatal(err)
		}
		vals = chartutil.CoalesceTables(v.AsMap(), vals)
	}
	// The required secret, as an operator sets it.
	vals["secrets"] = map[string]any{"AUTOGLM_ADMIN_KEY": "agk-admin", "AUTOGLM_POSTGRES_DSN": "postgres://u:p@db:5432/autoglm"}
	return vals
}

// TestLint is `helm lint --strict`: warnings fail too.
func TestLint(t *testing.T) {
	for name, files := range valueFiles {
		t.Run(name, func(t *testing.T) {
			res := lint.AllWithKubeVersion(chartDir, values(t, files), "default", &kubeVersion)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("%s", m)
				}
			}
		})
	}
}

// render is `helm template autoglm deploy/helm/autoglm -f ...`: Helm's template engine with
// the values a release gets (without the action package, which would bring a Kubernetes
// client along).
func render(t *testing.T, files []string) map[string]string {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, values(t, files)); err != nil {
		t.Fatal(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = kubeVersion
	vals, err := chartutil.ToRenderValues(ch, values(t, files), chartutil.ReleaseOptions{
		Name: "autoglm", Namespace: "default", Revision: 1, IsInstall: true}, caps)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	manifests := map[string]string{}
	for name, content := range out {
		if !strings.HasSuffix(name, ".yaml") || strings.TrimSpace(content) == "" {
			continue
		}
		for i, doc := range releaseutil.SplitManifests(content) {
			manifests[name+"#"+i] = doc
		}
	}
	return manifests
}

// decoders are the kinds the chart renders, each with its API type.
var decoders = map[string]func() any{
	"apps/v1 Deployment":                     func() any { return &appsv1.Deployment{} },
	"v1 Service":                             func() any { return &corev1.Service{} },
	"v1 ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1 Secret":                              func() any { return &corev1.Secret{} },
	"autoscaling/v2 HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1 PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
}

// TestTemplate renders the chart and decodes every manifest strictly (unknown or misplaced
// fields fail), then checks what a rollout depends on.
func TestTemplate(t *testing.T) {
	for name, files := range valueFiles {
		t.Run(name, func(t *testing.T) {
			objs := map[string]any{}
			for file, doc := range render(t, files) {
				var head struct {
					APIVersion string `json:"apiVersion"`
					Kind       string `json:"kind"`
				}
				if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				key := head.APIVersion + " " + head.Kind
				mk, ok := decoders[key]
				if !ok {
					t.Errorf("%s: no API type for %q", file, key)
					continue
				}
				obj := mk()
				if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
					t.Errorf("%s (%s): %v", file, key, err)
					continue
				}
				objs[head.Kind] = obj
			}
			var kinds []string
			for k := range objs {
				kinds = append(kinds, k)
			}
			slices.Sort(kinds)
			want := []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "Service"}
			if !slices.Equal(kinds, want) {
				t.Fatalf("rendered %v, want %v", kinds, want)
			}
			checkDeployment(t, objs["Deployment"].(*appsv1.Deployment))
			cm := objs["ConfigMap"].(*corev1.ConfigMap)
			if !strings.Contains(cm.Data["config.yaml"], "models:") {
				t.Errorf("the ConfigMap has no gateway configuration: %v", cm.Data)
			}
			if name == "canary" && !strings.Contains(cm.Data["config.yaml"], "split:") {
				t.Errorf("the canary values do not reach the configuration:\n%s", cm.Data["config.yaml"])
			}
		})
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("containers: %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("%s probe: %+v, want GET %s", name, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep")
	}
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds <= c.Lifecycle.PreStop.Sleep.Seconds {
		t.Errorf("terminationGracePeriodSeconds %v is not longer than the preStop sleep %d", spec.TerminationGracePeriodSeconds, c.Lifecycle.PreStop.Sleep.Seconds)
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil ||
		d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update may take pods away before new ones are ready: %+v", d.Spec.Strategy)
	}
}

// TestStrictDecoding: the decoding TestTemplate relies on refuses a misspelt field.
func TestStrictDecoding(t *testing.T) {
	bad := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"
	if err := yaml.UnmarshalStrict([]byte(bad), &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("a misspelt field was accepted: %v", err)
	}
}
