package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/api"
)

// keysCmd manages API keys through a running server's admin API.
func keysCmd() *cobra.Command {
	var baseURL, adminKey string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys on a running server",
		Long: `keys calls the admin API of a running autoglm server. The admin credential comes from
--admin-key, or from the AUTOGLM_ADMIN_KEY environment variable when the flag is not given.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&baseURL, "url", "http://127.0.0.1:8080", "server base URL")
	pf.StringVar(&adminKey, "admin-key", "", "admin API key or token (default: $AUTOGLM_ADMIN_KEY)")
	pf.BoolVar(&asJSON, "json", false, "print JSON instead of text")

	client := func() (*api.Client, error) {
		key := adminKey
		if key == "" {
			key = os.Getenv("AUTOGLM_ADMIN_KEY")
		}
		if key == "" {
			return nil, errors.New("no admin credential: pass --admin-key or set AUTOGLM_ADMIN_KEY")
		}
		return api.NewClient(baseURL, nil).WithAPIKey(key), nil
	}
	printJSON := func(cmd *cobra.Command, v any) error {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}

	var req api.CreateKeyRequest
	var models string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a key and print it (it is shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			if models != "" {
				for _, m := range strings.Split(models, ",") {
					if m = strings.TrimSpace(m); m != "" {
						req.Models = append(req.Models, m)
					}
				}
			}
			k, err := c.CreateKey(cmd.Context(), &req)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, k)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, k.Secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "created key %s (%s, role %s%s); the key above is not stored and will not be shown again\n",
				k.ID, k.Prefix, k.Role, describeExpiry(k.ExpiresAt))
			return nil
		},
	}
	cf := create.Flags()
	cf.StringVar(&req.UserID, "user", "", "owner's user id")
	cf.StringVar(&req.Name, "name", "", "a label for the key")
	cf.StringVar(&req.Role, "role", "", "role (default: the user's role, or user)")
	cf.StringVar(&models, "models", "", "comma-separated model allow-list (default: every model)")
	cf.StringVar(&req.ExpiresIn, "expires-in", "", "lifetime such as 720h (default: no expiry)")

	var opt api.ListKeysOptions
	list := &cobra.Command{
		Use:   "list",
		Short: "List keys, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var keys []api.APIKey
			o := opt
			for {
				p, err := c.ListKeys(cmd.Context(), o)
				if err != nil {
					return err
				}
				keys = append(keys, p.Items...)
				if p.Next == "" {
					break
				}
				o.Cursor = p.Next
			}
			if asJSON {
				if keys == nil {
					keys = []api.APIKey{}
				}
				return printJSON(cmd, keys)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPREFIX\tUSER\tROLE\tNAME\tMODELS\tEXPIRES\tSTATUS")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, dash(k.UserID), k.Role, dash(k.Name),
					dash(strings.Join(k.Models, ",")), expiryCell(k.ExpiresAt), keyStatus(k))
			}
			return tw.Flush()
		},
	}
	lf := list.Flags()
	lf.StringVar(&opt.UserID, "user", "", "only this user's keys")
	lf.BoolVar(&opt.IncludeRevoked, "all", false, "include revoked keys")

	revoke := &cobra.Command{
		Use:   "revoke KEY_ID...",
		Short: "Revoke keys; they stop working on every replica within a second",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			for _, id := range args {
				k, err := c.RevokeKey(cmd.Context(), id)
				if err != nil {
					return fmt.Errorf("revoke %s: %w", id, err)
				}
				if asJSON {
					if err := printJSON(cmd, k); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked %s (%s)\n", k.ID, k.Prefix)
			}
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func expiryCell(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func describeExpiry(t time.Time) string {
	if t.IsZero() {
		return ", no expiry"
	}
	return ", expires " + t.UTC().Format(time.RFC3339)
}

func keyStatus(k api.APIKey) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case k.UserDisabled:
		return "user disabled"
	case !k.ExpiresAt.IsZero() && !time.Now().Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}
