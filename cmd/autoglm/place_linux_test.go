package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/open-autoglm/autoglm/internal/config"
)

// TestPlaceThreads: serve gathers its threads by default and when the configuration says
// gather, and leaves them to the kernel when it says spread and when a model runs on the
// built-in engine.
func TestPlaceThreads(t *testing.T) {
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		t.Fatal(err)
	}
	gathers := "threads gathered on one CPU while lightly loaded"
	if cpus.Count() < 2 {
		gathers = "fewer than two CPUs"
	}
	remote := "models: [{name: m, backends: [{type: openai, base_url: 'http://127.0.0.1:1/v1'}]}]\n"
	for _, c := range []struct{ name, yaml, want string }{
		{"by default", remote, gathers},
		{"gather", "server: {cpu_placement: gather}\n" + remote, gathers},
		{"spread", "server: {cpu_placement: spread}\n" + remote, "server.cpu_placement is spread"},
		{"a model on the built-in engine", "models: [{name: m, backends: [{type: openai, base_url: 'http://127.0.0.1:1/v1'}]}, " +
			"{name: l, backends: [{type: local, path: models/stories260K.gguf}]}]\n", "model l runs on the built-in engine"},
	} {
		cfg, err := config.Parse([]byte(c.yaml), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var buf bytes.Buffer
		pl := placeThreads(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
		if pl != nil {
			pl.Stop()
		}
		if (pl != nil) != (c.want == "threads gathered on one CPU while lightly loaded") {
			t.Errorf("%s: placer %v", c.name, pl)
		}
		if !strings.Contains(buf.String(), c.want) {
			t.Errorf("%s: log %q, want %q", c.name, buf.String(), c.want)
		}
	}
}
