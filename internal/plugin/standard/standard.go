// Package standard brings in every built-in plugin type by blank import, as a command does
// with one line: import _ ".../internal/plugin/standard".
package standard

import (
	// The built-in plugin types, registered at init.
	_ "github.com/open-autoglm/autoglm/internal/plugin/codeprompt"
	_ "github.com/open-autoglm/autoglm/internal/plugin/deny"
	_ "github.com/open-autoglm/autoglm/internal/plugin/instructions"
	_ "github.com/open-autoglm/autoglm/internal/plugin/maxtokens"
	_ "github.com/open-autoglm/autoglm/internal/plugin/redact"
	_ "github.com/open-autoglm/autoglm/internal/plugin/rules"
	_ "github.com/open-autoglm/autoglm/internal/plugin/wasm"
)
