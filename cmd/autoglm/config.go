package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/config"
)

func configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Decode and validate a configuration file, reporting every problem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError(1)
			}
			backends := 0
			for _, m := range cfg.Models {
				backends += len(m.Backends)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d models, %d backends, listening on %s)\n",
				args[0], len(cfg.Models), backends, cfg.Server.Addr)
			return nil
		},
	})
	return cmd
}
