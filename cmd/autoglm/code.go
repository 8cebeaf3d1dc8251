package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/codecheck"
)

func codeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "code",
		Short: "Work with code: check it without running it",
	}
	cmd.AddCommand(codeCheckCmd())
	return cmd
}

// extLanguages maps file extensions to the checker's language names.
var extLanguages = map[string]string{
	".go": "go", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "jsx",
	".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx", ".json": "json",
	".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".sh": "shell", ".bash": "bash", ".zsh": "zsh",
	".sql": "sql", ".py": "python", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp",
	".hpp": "cpp", ".java": "java", ".rs": "rust", ".cs": "csharp", ".kt": "kotlin", ".swift": "swift",
	".scala": "scala", ".dart": "dart", ".php": "php", ".lua": "lua",
}

func codeCheckCmd() *cobra.Command {
	var (
		lang   string
		asJSON bool
		finish string
	)
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a file's code without running it and print its diagnostics",
		Long: `check parses (and for Go, type-checks) FILE in-process, the way code tasks check generated
code, and prints one line per diagnostic: FILE:LINE:COL: SEVERITY: MESSAGE. The language comes
from the file's extension unless --language names it. FILE "-" reads standard input.

Exit status: 0 when the code passed (warnings allowed), 1 when it has errors, 2 when the language
is not supported or the block was skipped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var (
				src []byte
				err error
			)
			if name == "-" {
				src, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), codecheck.MaxCodeBytes+1))
			} else {
				src, err = os.ReadFile(name)
			}
			if err != nil {
				return err
			}
			if lang == "" {
				lang = extLanguages[strings.ToLower(filepath.Ext(name))]
			}
			if lang == "" {
				return fmt.Errorf("cannot tell the language of %s: use --language", name)
			}
			res := codecheck.New().Check(cmd.Context(), codecheck.Request{Language: lang, Code: string(src), FinishReason: finish})
			out := cmd.OutOrStdout()
			if asJSON {
				b, err := json.MarshalIndent(res, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s\n", b)
			} else {
				for _, d := range res.Diagnostics {
					fmt.Fprintf(out, "%s:%d:%d: %s: %s\n", name, d.Line, d.Column, d.Severity, d.Message)
				}
				summary := fmt.Sprintf("%s: %s (%s %s, %d errors)", name, res.Status, res.Checker, res.Version, res.Errors())
				if res.Reason != "" {
					summary = fmt.Sprintf("%s: %s: %s", name, res.Status, res.Reason)
				}
				fmt.Fprintln(cmd.ErrOrStderr(), summary)
			}
			switch res.Status {
			case codecheck.StatusPassed:
				return nil
			case codecheck.StatusFailed:
				return exitError(1)
			}
			return exitError(2)
		},
	}
	f := cmd.Flags()
	f.StringVar(&lang, "language", "", "the code's language (default: from the file's extension)")
	f.BoolVar(&asJSON, "json", false, "print the whole result as JSON")
	f.StringVar(&finish, "finish-reason", "", `the generation's finish_reason ("length" marks the code as truncated)`)
	return cmd
}
