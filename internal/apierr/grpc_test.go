package apierr

import (
	"net/http"
	"testing"
)

func TestGRPCCodeEveryKind(t *testing.T) {
	if len(kindGRPC) != len(kindNames) {
		t.Fatalf("kindGRPC has %d entries, kinds %d", len(kindGRPC), len(kindNames))
	}
	for k := range kindNames {
		if Kind(k).GRPCCode() == 0 {
			t.Errorf("%v maps to OK", Kind(k))
		}
	}
	if got := Kind(200).GRPCCode(); got != GRPCInternal {
		t.Errorf("unknown kind: %v", got)
	}
}

func TestKindOfStatus(t *testing.T) {
	for k := range kindNames {
		kind := Kind(k)
		if kind == QuotaExceeded {
			continue
		}
		if got := KindOfStatus(kind.HTTPStatus()); got != kind {
			t.Errorf("KindOfStatus(%d) = %v, want %v", kind.HTTPStatus(), got, kind)
		}
	}
	for status, want := range map[int]Kind{http.StatusUnprocessableEntity: Invalid, http.StatusTeapot: Invalid, 599: Internal, http.StatusTooManyRequests: RateLimited} {
		if got := KindOfStatus(status); got != want {
			t.Errorf("KindOfStatus(%d) = %v, want %v", status, got, want)
		}
	}
}
