package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/open-autoglm/autoglm/internal/config"
)

// OpenFunc opens a driver's store from the "store" configuration section (defaults applied)
// and the server's data directory, applying pending migrations before it returns.
type OpenFunc func(ctx context.Context, cfg config.Store, dataDir string) (Store, error)

// drivers is the init-time registry of OpenFuncs by driver name. The lock guards against
// drivers registering while a test opens a store; nothing else writes it.
var drivers struct {
	sync.RWMutex
	m map[string]OpenFunc
}

// Register makes a driver available to Open under name (the value of store.driver). Drivers
// call it from init; it panics when a name is registered twice.
func Register(name string, open OpenFunc) {
	drivers.Lock()
	defer drivers.Unlock()
	if drivers.m == nil {
		drivers.m = make(map[string]OpenFunc)
	}
	if _, dup := drivers.m[name]; dup {
		panic("store: driver " + name + " registered twice")
	}
	drivers.m[name] = open
}

// Open opens the store the configuration names. The driver's package must be linked in with
// a blank import (internal/store/sqlite, internal/store/postgres); cfg must have its defaults
// applied (config.Parse does).
func Open(ctx context.Context, cfg config.Store, dataDir string) (Store, error) {
	drivers.RLock()
	open, ok := drivers.m[cfg.Driver]
	drivers.RUnlock()
	if !ok {
		return nil, fmt.Errorf("store: driver %q is not linked in (registered: %s); import internal/store/%s",
			cfg.Driver, strings.Join(Drivers(), ", "), cfg.Driver)
	}
	return open(ctx, cfg, dataDir)
}

// Drivers lists the registered driver names, sorted.
func Drivers() []string {
	drivers.RLock()
	defer drivers.RUnlock()
	names := make([]string, 0, len(drivers.m))
	for n := range drivers.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
