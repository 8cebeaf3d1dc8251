module github.com/open-autoglm/autoglm/scripts/fhproxy

go 1.26.0

// fasthttp is the baseline itself: make bench compares autoglm with the smallest proxy on
// fasthttp's server and client. It is this module's only direct dependency and never reaches
// autoglm's go.mod or binary; the other three come with it.
require github.com/valyala/fasthttp v1.79.0

require (
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/molecule-man/go-brrr v1.3.1 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
)
