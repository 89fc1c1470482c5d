// A cnitool-compatible test driver built on the real libcni.
//
// Same command line and environment as containernetworking/cni's cnitool
// (v1.1.x): `cnitool add|check|del <net> <netns>`, NETCONFPATH, CNI_PATH,
// CNI_ARGS, CAP_ARGS, CNI_IFNAME. Two differences, both for tests:
//   - CNI_CACHE_DIR (default /var/lib/cni) sets libcni's results cache, so a
//     test can isolate the cached ADD result that libcni hands to CHECK and DEL
//     as prevResult;
//   - an unknown command prints the usage and exits 1 (cnitool exits 0 silently).
//
// Build offline: GO111MODULE=off GOPATH=/usr/share/gocode go build
package main

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

const (
	EnvCNIPath        = "CNI_PATH"
	EnvNetDir         = "NETCONFPATH"
	EnvCapabilityArgs = "CAP_ARGS"
	EnvCNIArgs        = "CNI_ARGS"
	EnvCNIIfname      = "CNI_IFNAME"
	EnvCacheDir       = "CNI_CACHE_DIR"

	DefaultNetDir = "/etc/cni/net.d"

	CmdAdd   = "add"
	CmdCheck = "check"
	CmdDel   = "del"
)

// parseArgs is cnitool's: K=V pairs separated by ';', each with exactly one '='.
func parseArgs(args string) ([][2]string, error) {
	var result [][2]string

	for _, pair := range strings.Split(args, ";") {
		kv := strings.Split(pair, "=")
		if len(kv) != 2 || kv[0] == "" || kv[1] == "" {
			return nil, fmt.Errorf("invalid CNI_ARGS pair %q", pair)
		}
		result = append(result, [2]string{kv[0], kv[1]})
	}
	return result, nil
}

func main() {
	if len(os.Args) < 4 {
		usage()
	}
	cmd := os.Args[1]
	if cmd != CmdAdd && cmd != CmdCheck && cmd != CmdDel {
		usage()
	}

	netdir := os.Getenv(EnvNetDir)
	if netdir == "" {
		netdir = DefaultNetDir
	}
	// Loads a .conflist by name, else a .conf/.json upconverted to a list.
	netconf, err := libcni.LoadConfList(netdir, os.Args[2])
	if err != nil {
		exit(err)
	}

	var capabilityArgs map[string]interface{}
	if v := os.Getenv(EnvCapabilityArgs); len(v) > 0 {
		if err = json.Unmarshal([]byte(v), &capabilityArgs); err != nil {
			exit(err)
		}
	}

	var cniArgs [][2]string
	if v := os.Getenv(EnvCNIArgs); len(v) > 0 {
		if cniArgs, err = parseArgs(v); err != nil {
			exit(err)
		}
	}

	ifName, ok := os.LookupEnv(EnvCNIIfname)
	if !ok {
		ifName = "eth0"
	}

	netns, err := filepath.Abs(os.Args[3])
	if err != nil {
		exit(err)
	}

	// The container ID is derived from the netns path, as in cnitool.
	s := sha512.Sum512([]byte(netns))
	containerID := fmt.Sprintf("cnitool-%x", s[:10])

	cacheDir := os.Getenv(EnvCacheDir)
	if cacheDir == "" {
		cacheDir = libcni.CacheDir
	}
	cninet := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv(EnvCNIPath)), cacheDir, nil)

	rt := &libcni.RuntimeConf{
		ContainerID:    containerID,
		NetNS:          netns,
		IfName:         ifName,
		Args:           cniArgs,
		CapabilityArgs: capabilityArgs,
	}

	ctx := context.TODO()
	switch cmd {
	case CmdAdd:
		result, err := cninet.AddNetworkList(ctx, netconf, rt)
		if result != nil {
			_ = result.Print()
		}
		exit(err)
	case CmdCheck:
		exit(cninet.CheckNetworkList(ctx, netconf, rt))
	case CmdDel:
		exit(cninet.DelNetworkList(ctx, netconf, rt))
	}
}

func usage() {
	exe := filepath.Base(os.Args[0])

	fmt.Fprintf(os.Stderr, "%s: Add, check, or remove network interfaces from a network namespace\n", exe)
	fmt.Fprintf(os.Stderr, "  %s add   <net> <netns>\n", exe)
	fmt.Fprintf(os.Stderr, "  %s check <net> <netns>\n", exe)
	fmt.Fprintf(os.Stderr, "  %s del   <net> <netns>\n", exe)
	os.Exit(1)
}

func exit(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}
