// Command image builds autoglm's OCI image without a container daemon: one layer holding the
// static binary, a passwd and group entry for the unprivileged user it runs as, the CA
// certificates and an empty, writable data directory, appended to an empty base. The result
// is an OCI image layout written as a tar file, which `docker load`, `podman load`,
// `skopeo copy oci-archive:...` and `crane push` accept. It is the image the Dockerfile
// builds, for machines with no Docker.
//
//	go run ./deploy/image -binary bin/autoglm-static -out build/autoglm-image.tar
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed layout, the same as the Dockerfile's.
const (
	binaryPath = "/usr/local/bin/autoglm"
	certsPath  = "/etc/ssl/certs/ca-certificates.crt"
	dataDir    = "/data"
	configPath = "/etc/autoglm/config.yaml"
	uid        = 65532 // the "nonroot" user of the distroless images
	userName   = "autoglm"
)

func main() {
	var p params
	flag.StringVar(&p.Binary, "binary", "", "the static autoglm binary (CGO_ENABLED=0)")
	flag.StringVar(&p.Certs, "ca-certs", certsPath, "the CA certificate bundle to include")
	flag.StringVar(&p.Out, "out", "build/autoglm-image.tar", "the OCI layout tar file to write")
	flag.StringVar(&p.Ref, "tag", "autoglm:latest", "the image name recorded in the layout's index")
	flag.StringVar(&p.Arch, "arch", runtime.GOARCH, "the binary's architecture (GOARCH)")
	flag.Parse()
	if err := run(p); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type params struct {
	Binary, Certs, Out, Ref, Arch string
}

func run(p params) error {
	if p.Binary == "" {
		return errors.New("-binary is required")
	}
	img, err := build(p.Binary, p.Certs, p.Arch)
	if err != nil {
		return err
	}
	return writeLayoutTar(img, p.Ref, p.Out)
}

// build returns the image: an empty base, one layer, and a configuration that runs
// `autoglm serve` as the unprivileged user.
func build(binary, certs, arch string) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(certs)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	layerTar, err := rootLayer(bin, ca)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = arch, "linux"
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint:   []string{binaryPath},
		Cmd:          []string{"serve", "--config", configPath, "--data-dir", dataDir},
		WorkingDir:   dataDir,
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + certsPath},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Volumes:      map[string]struct{}{dataDir: {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":  "autoglm",
			"org.opencontainers.image.source": "https://github.com/open-autoglm/autoglm",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// rootLayer is the layer's tar: every entry with a fixed time, so the same inputs give the
// same digest.
func rootLayer(bin, ca []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dir := func(name string, owner int, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: owner, Gid: owner, ModTime: epoch})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", userName, uid, uid, userName, dataDir)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", userName, uid)
	steps := []func() error{
		func() error { return dir("etc", 0, 0o755) },
		func() error { return dir("etc/autoglm", 0, 0o755) },
		func() error { return dir("etc/ssl", 0, 0o755) },
		func() error { return dir("etc/ssl/certs", 0, 0o755) },
		func() error { return dir("tmp", 0, 0o1777) },
		func() error { return dir("usr", 0, 0o755) },
		func() error { return dir("usr/local", 0, 0o755) },
		func() error { return dir("usr/local/bin", 0, 0o755) },
		func() error { return dir(dataDir[1:], uid, 0o750) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return file(certsPath[1:], 0o644, ca) },
		func() error { return file(binaryPath[1:], 0o755, bin) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayoutTar writes img as an OCI image layout (index.json, oci-layout, blobs/) inside a
// tar file at out, the image named ref in the index.
func writeLayoutTar(img v1.Image, ref, out string) error {
	tmp, err := os.MkdirTemp("", "autoglm-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
	})); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = tw.AddFS(os.DirFS(tmp))
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
