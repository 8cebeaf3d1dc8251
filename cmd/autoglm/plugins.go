package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

func pluginsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "plugins",
		Short: "List the plugin types built into this binary",
		Long: `plugins lists the plugin types this build of autoglm knows, one per line: the names
the configuration's plugins[].type may use. docs/PLUGINS.md describes each.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, t := range plugin.Types() {
				fmt.Fprintln(cmd.OutOrStdout(), t)
			}
			return nil
		},
	}
}
