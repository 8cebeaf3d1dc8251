// Command autoglm is the Open-AutoGLM model-serving platform: an OpenAI-compatible gateway
// with a built-in inference engine, in one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	// Backend types, registered at init.
	_ "github.com/open-autoglm/autoglm/internal/backend/local"
	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		fmt.Fprintln(os.Stderr, "autoglm:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a status code and no message (the command printed its own).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string) error {
	root := &cobra.Command{
		Use:           "autoglm",
		Short:         "Open-AutoGLM: an OpenAI-compatible model gateway with a built-in inference engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		versionCmd(),
		serveCmd(),
		mockllmCmd(),
		configCmd(),
		benchCmd(),
		benchEngineCmd(),
		tokenizeCmd(),
		logitsCmd(),
		generateCmd(),
		keysCmd(),
		taskCmd(),
		pullCmd(),
		modelsCmd(),
		codeCmd(),
		evalCmd(),
		pluginsCmd(),
	)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
