package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// binaryEnv names a static autoglm binary (CGO_ENABLED=0) to boot from the image; `make
// image` sets it. Without it the test boots a small static program instead, which proves the
// image's layout and configuration but not autoglm itself.
const binaryEnv = "AUTOGLM_IMAGE_BINARY"

// versionEnv is the version the binary was built with (-X main.version), which `autoglm
// version` must print.
const versionEnv = "AUTOGLM_IMAGE_VERSION"

func TestImageBoots(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image's binary runs on Linux")
	}
	dir := t.TempDir()
	bin, args, want := os.Getenv(binaryEnv), []string{"version"}, "autoglm "+os.Getenv(versionEnv)
	if bin == "" {
		bin, args, want = staticProgram(t, dir), nil, "certs=ok"
	}
	certs := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(certs, []byte("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	if err := run(params{Binary: bin, Certs: certs, Out: out, Ref: "autoglm:test", Arch: runtime.GOARCH}); err != nil {
		t.Fatal(err)
	}
	img := readLayoutTar(t, out, filepath.Join(dir, "layout"))

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q: the image must not run as root", cf.Config.User)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != binaryPath {
		t.Errorf("entrypoint %v", cf.Config.Entrypoint)
	}
	if m, _ := img.MediaType(); !strings.Contains(string(m), "oci") {
		t.Errorf("manifest media type %q; want OCI", m)
	}

	root := filepath.Join(dir, "root")
	unpack(t, img, root)
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil || !strings.Contains(string(passwd), "autoglm:x:65532:65532:") {
		t.Errorf("passwd: %q %v", passwd, err)
	}
	cmd := exec.Command(filepath.Join(root, binaryPath), args...)
	cmd.Env = []string{"SSL_CERT_FILE=" + filepath.Join(root, certsPath)}
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running the image's binary: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), want) {
		t.Errorf("output %q; want %q", got, want)
	}
}

// staticProgram builds a static program that reports whether it can read the CA bundle the
// image's SSL_CERT_FILE names.
func staticProgram(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "prog")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	const prog = `package main

import (
	"fmt"
	"os"
)

func main() {
	b, err := os.ReadFile(os.Getenv("SSL_CERT_FILE"))
	certs := "missing"
	if err == nil && len(b) > 0 {
		certs = "ok"
	}
	fmt.Printf("certs=%s\n", certs)
}
`
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module prog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "prog.bin")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test program: %v\n%s", err, b)
	}
	return out
}

// readLayoutTar unpacks the OCI layout tar into dir and returns its one image.
func readLayoutTar(t *testing.T, file, dir string) v1.Image {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	extract(t, tar.NewReader(f), dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "autoglm:test" {
		t.Fatalf("index: %+v", m.Manifests)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// unpack writes the image's flattened file system under root.
func unpack(t *testing.T, img v1.Image, root string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	extract(t, tar.NewReader(rc), root)
}

func extract(t *testing.T, tr *tar.Reader, root string) {
	t.Helper()
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("entry outside the root: %q", h.Name)
		}
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected entry %q of type %c", h.Name, h.Typeflag)
		}
	}
}
