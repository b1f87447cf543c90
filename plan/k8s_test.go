package plan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestK8sCPU(t *testing.T) {
	for _, c := range []struct {
		cores float64
		want  string
	}{
		{1, "1"}, {2, "2"}, {16, "16"}, {1.5, "1500m"}, {0.1, "100m"}, {0.25, "250m"},
		{2.0001, "2001m"}, {0.0001, "1m"}, {1e-9, "1m"}, {0.3 + 0.6, "900m"}, {12.75, "12750m"},
	} {
		if got := k8sCPU(c.cores); got != c.want {
			t.Errorf("k8sCPU(%v) = %q, want %q", c.cores, got, c.want)
		}
	}
}

func TestK8sBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {1, "1"}, {1000, "1000"}, {1024, "1Ki"}, {1536, "1536"}, {3 << 10, "3Ki"},
		{1 << 20, "1Mi"}, {1536 << 20, "1536Mi"}, {8 << 30, "8Gi"}, {3 << 40, "3Ti"}, {1 << 50, "1Pi"}, {1 << 60, "1Ei"},
		{1<<30 + 1, "1073741825"}, {5<<30 + 512<<20, "5632Mi"},
	} {
		if got := k8sBytes(c.n); got != c.want {
			t.Errorf("k8sBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	for _, c := range []struct{ n, want int64 }{
		{1, 1 << 20}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20}, {8 << 30, 8 << 30}, {k8sMaxBytes, k8sMaxBytes},
	} {
		if got := k8sRoundMi(c.n); got != c.want {
			t.Errorf("k8sRoundMi(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// k8sDocs parses every document of a manifest file into generic maps.
func k8sDocs(t *testing.T, p string) []map[string]any {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		docs = append(docs, m)
	}
	return docs
}

// k8sDig follows keys (strings for maps, ints for lists) into v.
func k8sDig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, k := range path {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %v", path, path[:i])
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("%v: no %q", path, k)
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d at %v", path, k, path[:i])
			}
			v = l[k]
		}
	}
	return v
}

func k8sDigString(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := k8sDig(t, v, path...).(string)
	if !ok {
		t.Fatalf("%v: %#v is not a string", path, k8sDig(t, v, path...))
	}
	return s
}

func k8sDigInt(t *testing.T, v any, path ...any) int {
	t.Helper()
	n, ok := k8sDig(t, v, path...).(int)
	if !ok {
		t.Fatalf("%v: %#v is not an int", path, k8sDig(t, v, path...))
	}
	return n
}

func k8sDigStrings(t *testing.T, v any, path ...any) map[string]string {
	t.Helper()
	m, ok := k8sDig(t, v, path...).(map[string]any)
	if !ok {
		t.Fatalf("%v: not a map", path)
	}
	out := map[string]string{}
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("%v: %s is %#v, not a string", path, k, v)
		}
		out[k] = s
	}
	return out
}

func TestEmitK8s(t *testing.T) {
	for _, c := range []struct {
		name   string
		fleet  Fleet
		ns     string
		image  string
		cpu    string
		memory string
		gomem  string
		procs  string
		gpus   string
		volume string
		secret string
		port   int
		mport  int
	}{
		{
			name:  "one",
			fleet: Fleet{Shards: 1, Replicas: 1, CPU: 2, MemoryBytes: 8 << 30, ModelVolumeBytes: 20 << 30, LogVolumeBytes: 10 << 30},
			image: "reelrank:latest", cpu: "2", memory: "8Gi", gomem: "7372MiB", procs: "2", volume: "30Gi",
			secret: "reelrank-token", port: 7070, mport: 9090,
		},
		{
			name: "gpu",
			fleet: Fleet{Name: "rr", Namespace: "ranking", Image: "registry.example/reelrank:v3", Shards: 4, Replicas: 3,
				CPU: 1.5, MemoryBytes: 1536<<20 + 7, GPUs: 1, ModelVolumeBytes: 5 << 30, LogVolumeBytes: 512 << 20,
				StorageClass: "fast-ssd", Port: 8000, MetricsPort: 8001, TokenSecret: "rr-auth"},
			ns: "ranking", image: "registry.example/reelrank:v3", cpu: "1500m", memory: "1537Mi", gomem: "1383MiB", procs: "2",
			gpus: "1", volume: "5632Mi", secret: "rr-auth", port: 8000, mport: 8001,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "manifests") // made by EmitK8s
			paths, err := EmitK8s(dir, c.fleet)
			if err != nil {
				t.Fatal(err)
			}
			name := c.fleet.Name
			if name == "" {
				name = "reelrank"
			}
			if len(paths) != c.fleet.Shards {
				t.Fatalf("%d files, want one per shard (%d)", len(paths), c.fleet.Shards)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != len(paths) {
				t.Errorf("%d entries in the folder, %d files written", len(ents), len(paths))
			}
			for i, p := range paths {
				shard := fmt.Sprintf("%s-shard-%d", name, i)
				if want := filepath.Join(dir, shard+".yaml"); p != want {
					t.Errorf("path %s, want %s", p, want)
				}
				docs := k8sDocs(t, p)
				if len(docs) != 3 {
					t.Fatalf("%s: %d documents, want 3", p, len(docs))
				}
				svc, pdb, sts := docs[0], docs[1], docs[2]
				for _, d := range []struct {
					doc              map[string]any
					apiVersion, kind string
				}{{svc, "v1", "Service"}, {pdb, "policy/v1", "PodDisruptionBudget"}, {sts, "apps/v1", "StatefulSet"}} {
					if got := k8sDigString(t, d.doc, "apiVersion"); got != d.apiVersion {
						t.Errorf("%s: apiVersion %q, want %q", d.kind, got, d.apiVersion)
					}
					if got := k8sDigString(t, d.doc, "kind"); got != d.kind {
						t.Errorf("kind %q, want %q", got, d.kind)
					}
					if got := k8sDigString(t, d.doc, "metadata", "name"); got != shard {
						t.Errorf("%s: name %q, want %q", d.kind, got, shard)
					}
					meta := k8sDig(t, d.doc, "metadata").(map[string]any)
					if ns, ok := meta["namespace"]; c.ns == "" && ok || c.ns != "" && ns != c.ns {
						t.Errorf("%s: namespace %v, want %q", d.kind, ns, c.ns)
					}
				}
				labels := map[string]string{"app": name, "shard": fmt.Sprint(i)}

				// The headless Service selects the shard's pods.
				if got := k8sDigString(t, svc, "spec", "clusterIP"); got != "None" {
					t.Errorf("clusterIP %q, want None", got)
				}
				if got := k8sDigStrings(t, svc, "spec", "selector"); !maps.Equal(got, labels) {
					t.Errorf("service selector %v, want %v", got, labels)
				}
				ports := map[string]int{}
				for j := range 2 {
					ports[k8sDigString(t, svc, "spec", "ports", j, "name")] = k8sDigInt(t, svc, "spec", "ports", j, "port")
					if tp := k8sDigString(t, svc, "spec", "ports", j, "targetPort"); tp != k8sDigString(t, svc, "spec", "ports", j, "name") {
						t.Errorf("service port %d targets %q", j, tp)
					}
				}
				if ports["wire"] != c.port || ports["metrics"] != c.mport {
					t.Errorf("service ports %v, want wire %d metrics %d", ports, c.port, c.mport)
				}

				// The PDB: one replica at a time, over the shard's pods.
				if got := k8sDigInt(t, pdb, "spec", "maxUnavailable"); got != 1 {
					t.Errorf("maxUnavailable %d, want 1", got)
				}
				if got := k8sDigStrings(t, pdb, "spec", "selector", "matchLabels"); !maps.Equal(got, labels) {
					t.Errorf("pdb selector %v, want %v", got, labels)
				}

				// The StatefulSet.
				spec := k8sDig(t, sts, "spec")
				if got := k8sDigInt(t, spec, "replicas"); got != c.fleet.Replicas {
					t.Errorf("replicas %d, want %d", got, c.fleet.Replicas)
				}
				if got := k8sDigString(t, spec, "serviceName"); got != shard {
					t.Errorf("serviceName %q, want %q", got, shard)
				}
				if got := k8sDigStrings(t, spec, "selector", "matchLabels"); !maps.Equal(got, labels) {
					t.Errorf("selector %v, want %v", got, labels)
				}
				podLabels := k8sDigStrings(t, spec, "template", "metadata", "labels")
				for k, v := range labels {
					if podLabels[k] != v {
						t.Errorf("pod label %s = %q, want %q (the selectors' labels)", k, podLabels[k], v)
					}
				}
				ann := k8sDigStrings(t, spec, "template", "metadata", "annotations")
				if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != fmt.Sprint(c.mport) || ann["prometheus.io/path"] != "/metrics" {
					t.Errorf("scrape annotations %v", ann)
				}
				pod := k8sDig(t, spec, "template", "spec")
				if g := k8sDigInt(t, pod, "terminationGracePeriodSeconds"); g <= 10 {
					t.Errorf("terminationGracePeriodSeconds %d, not past serve's 10 s shutdown", g)
				}
				sc := k8sDig(t, pod, "securityContext")
				if k8sDig(t, sc, "runAsNonRoot") != true || k8sDigInt(t, sc, "runAsUser") != 65532 || k8sDigInt(t, sc, "fsGroup") != 65532 {
					t.Errorf("pod securityContext %v", sc)
				}
				anti := k8sDig(t, pod, "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", 0, "podAffinityTerm")
				if got := k8sDigStrings(t, anti, "labelSelector", "matchLabels"); !maps.Equal(got, labels) || k8sDigString(t, anti, "topologyKey") != "kubernetes.io/hostname" {
					t.Errorf("anti-affinity %v", anti)
				}

				ctr := k8sDig(t, pod, "containers", 0)
				if got := k8sDigString(t, ctr, "image"); got != c.image {
					t.Errorf("image %q, want %q", got, c.image)
				}
				var args []string
				for _, a := range k8sDig(t, ctr, "args").([]any) {
					args = append(args, a.(string))
				}
				for _, want := range [][]string{
					{"--shard", fmt.Sprintf("%d/%d", i, c.fleet.Shards)},
					{"--bundle", "/var/lib/reelrank/model"},
					{"--addr", fmt.Sprintf("0.0.0.0:%d", c.port)},
					{"--metrics", fmt.Sprintf("0.0.0.0:%d", c.mport)},
					{"--sample=false"},
				} {
					if !slices.Contains(k8sWindows(args, len(want)), strings.Join(want, " ")) {
						t.Errorf("args %q lack %q", args, want)
					}
				}
				if args[0] != "serve" || slices.Contains(args, "--insecure") || slices.Contains(args, "--token") {
					t.Errorf("args %q", args)
				}
				env := map[string]any{}
				for _, e := range k8sDig(t, ctr, "env").([]any) {
					e := e.(map[string]any)
					if v, ok := e["value"]; ok {
						env[e["name"].(string)] = v
					} else {
						env[e["name"].(string)] = e["valueFrom"]
					}
				}
				if got := k8sDigString(t, env, "REELRANK_TOKEN", "secretKeyRef", "name"); got != c.secret {
					t.Errorf("token secret %q, want %q", got, c.secret)
				}
				if k8sDigString(t, env, "REELRANK_TOKEN", "secretKeyRef", "key") != "token" || k8sDig(t, env, "REELRANK_TOKEN", "secretKeyRef", "optional") != false {
					t.Errorf("token from %v: want the required key token", env["REELRANK_TOKEN"])
				}
				if env["GOMEMLIMIT"] != c.gomem || env["GOMAXPROCS"] != c.procs {
					t.Errorf("GOMEMLIMIT %v GOMAXPROCS %v, want %s %s", env["GOMEMLIMIT"], env["GOMAXPROCS"], c.gomem, c.procs)
				}

				cports := map[string]int{}
				for j := range 2 {
					cports[k8sDigString(t, ctr, "ports", j, "name")] = k8sDigInt(t, ctr, "ports", j, "containerPort")
				}
				if !maps.Equal(cports, ports) {
					t.Errorf("container ports %v, service ports %v", cports, ports)
				}
				for _, p := range []struct{ probe, path string }{
					{"startupProbe", "/healthz"}, {"readinessProbe", "/readyz"}, {"livenessProbe", "/healthz"},
				} {
					if got := k8sDigString(t, ctr, p.probe, "httpGet", "path"); got != p.path {
						t.Errorf("%s path %q, want %q", p.probe, got, p.path)
					}
					if got := k8sDigString(t, ctr, p.probe, "httpGet", "port"); got != "metrics" {
						t.Errorf("%s port %q, want metrics", p.probe, got)
					}
					if k8sDigInt(t, ctr, p.probe, "periodSeconds") < 1 || k8sDigInt(t, ctr, p.probe, "failureThreshold") < 1 {
						t.Errorf("%s: %v", p.probe, k8sDig(t, ctr, p.probe))
					}
				}
				if s := k8sDigInt(t, ctr, "startupProbe", "periodSeconds") * k8sDigInt(t, ctr, "startupProbe", "failureThreshold"); s < 600 {
					t.Errorf("the startup probe gives the model %d s to load", s)
				}

				req := k8sDigStrings(t, ctr, "resources", "requests")
				lim := k8sDigStrings(t, ctr, "resources", "limits")
				want := map[string]string{"cpu": c.cpu, "memory": c.memory}
				wantLim := map[string]string{"memory": c.memory}
				if c.gpus != "" {
					want["nvidia.com/gpu"] = c.gpus
					wantLim["nvidia.com/gpu"] = c.gpus
				}
				if !maps.Equal(req, want) || !maps.Equal(lim, wantLim) {
					t.Errorf("requests %v limits %v, want %v and %v", req, lim, want, wantLim)
				}
				if _, ok := pod.(map[string]any)["tolerations"]; ok != (c.gpus != "") {
					t.Errorf("tolerations %v with GPUs %q", k8sDig(t, pod, "tolerations"), c.gpus)
				}

				csc := k8sDig(t, ctr, "securityContext")
				if k8sDig(t, csc, "runAsNonRoot") != true || k8sDigInt(t, csc, "runAsUser") != 65532 ||
					k8sDig(t, csc, "readOnlyRootFilesystem") != true || k8sDig(t, csc, "allowPrivilegeEscalation") != false ||
					k8sDig(t, csc, "capabilities", "drop", 0) != "ALL" {
					t.Errorf("container securityContext %v", csc)
				}

				// The one volume: mounted at /var/lib/reelrank, model and logs.
				mounts := map[string]string{}
				for _, m := range k8sDig(t, ctr, "volumeMounts").([]any) {
					mounts[k8sDigString(t, m, "name")] = k8sDigString(t, m, "mountPath")
				}
				if mounts["data"] != "/var/lib/reelrank" {
					t.Errorf("mounts %v: want data at /var/lib/reelrank", mounts)
				}
				claims := k8sDig(t, spec, "volumeClaimTemplates").([]any)
				if len(claims) != 1 || k8sDigString(t, claims[0], "metadata", "name") != "data" {
					t.Fatalf("claims %v", claims)
				}
				if got := k8sDigString(t, claims[0], "spec", "resources", "requests", "storage"); got != c.volume {
					t.Errorf("volume %q, want %q", got, c.volume)
				}
				if sc, ok := k8sDig(t, claims[0], "spec").(map[string]any)["storageClassName"]; c.fleet.StorageClass != "" && sc != c.fleet.StorageClass || c.fleet.StorageClass == "" && ok {
					t.Errorf("storageClassName %v, want %q", sc, c.fleet.StorageClass)
				}
				for name, path := range mounts {
					if name == "data" {
						continue
					}
					found := false
					for _, v := range k8sDig(t, pod, "volumes").([]any) {
						found = found || k8sDigString(t, v, "name") == name
					}
					if !found {
						t.Errorf("mount %s at %s has no volume", name, path)
					}
				}
			}
		})
	}
}

// k8sWindows returns every run of n consecutive items of s, joined by
// spaces.
func k8sWindows(s []string, n int) []string {
	var out []string
	for i := 0; i+n <= len(s); i++ {
		out = append(out, strings.Join(s[i:i+n], " "))
	}
	return out
}

// A smaller fleet emitted over a larger one's folder removes the shards
// it no longer has, and leaves other files alone.
func TestEmitK8sShrinks(t *testing.T) {
	dir := t.TempDir()
	f := Fleet{Shards: 4, Replicas: 2, CPU: 1, MemoryBytes: 1 << 30, ModelVolumeBytes: 1 << 30}
	if _, err := EmitK8s(dir, f); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"notes.yaml", "reelrank-shard-01.yaml", "other-shard-7.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, keep), []byte("x: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.Shards = 2
	paths, err := EmitK8s(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"notes.yaml", "other-shard-7.yaml", "reelrank-shard-0.yaml", "reelrank-shard-01.yaml", "reelrank-shard-1.yaml"}
	if !slices.Equal(names, want) {
		t.Errorf("folder holds %q, want %q", names, want)
	}
	if len(paths) != 2 {
		t.Errorf("paths %q", paths)
	}
	if got := k8sDigString(t, k8sDocs(t, paths[1])[2], "spec", "template", "spec", "containers", 0, "args", 4); got != "1/2" {
		t.Errorf("shard 1's --shard %q, want 1/2", got)
	}
}

func TestEmitK8sErrors(t *testing.T) {
	ok := Fleet{Shards: 2, Replicas: 2, CPU: 1, MemoryBytes: 1 << 30, ModelVolumeBytes: 1 << 30}
	for _, c := range []struct {
		name   string
		change func(*Fleet)
		want   string
	}{
		{"upper-case name", func(f *Fleet) { f.Name = "ReelRank" }, "name"},
		{"name starting with a digit", func(f *Fleet) { f.Name = "1rr" }, "name"},
		{"name ending in '-'", func(f *Fleet) { f.Name = "rr-" }, "name"},
		{"name with a dot", func(f *Fleet) { f.Name = "r.r" }, "name"},
		{"long name", func(f *Fleet) { f.Name = strings.Repeat("r", 50) }, "longer than 52"},
		{"no shards", func(f *Fleet) { f.Shards = 0 }, "shards"},
		{"negative shards", func(f *Fleet) { f.Shards = -1 }, "shards"},
		{"too many shards", func(f *Fleet) { f.Shards = 1 << 20 }, "shards"},
		{"no replicas", func(f *Fleet) { f.Replicas = 0 }, "replicas"},
		{"no cpu", func(f *Fleet) { f.CPU = 0 }, "cores"},
		{"NaN cpu", func(f *Fleet) { f.CPU = math.NaN() }, "cores"},
		{"infinite cpu", func(f *Fleet) { f.CPU = math.Inf(1) }, "cores"},
		{"negative cpu", func(f *Fleet) { f.CPU = -2 }, "cores"},
		{"no memory", func(f *Fleet) { f.MemoryBytes = 0 }, "memory"},
		{"tiny memory", func(f *Fleet) { f.MemoryBytes = 1 << 20 }, "memory"},
		{"huge memory", func(f *Fleet) { f.MemoryBytes = math.MaxInt64 }, "memory"},
		{"negative GPUs", func(f *Fleet) { f.GPUs = -1 }, "GPUs"},
		{"no model volume", func(f *Fleet) { f.ModelVolumeBytes = 0 }, "model volume"},
		{"huge model volume", func(f *Fleet) { f.ModelVolumeBytes = math.MaxInt64 }, "model volume"},
		{"negative log volume", func(f *Fleet) { f.LogVolumeBytes = -1 }, "log volume"},
		{"bad namespace", func(f *Fleet) { f.Namespace = "Prod" }, "namespace"},
		{"bad storage class", func(f *Fleet) { f.StorageClass = "fast ssd" }, "storage class"},
		{"bad token secret", func(f *Fleet) { f.TokenSecret = "my_secret" }, "token secret"},
		{"image with a space", func(f *Fleet) { f.Image = "reelrank latest" }, "image"},
		{"image with a newline", func(f *Fleet) { f.Image = "reelrank:latest\nkind: Pod" }, "image"},
		{"port 0x10000", func(f *Fleet) { f.Port = 65536 }, "port"},
		{"negative metrics port", func(f *Fleet) { f.MetricsPort = -1 }, "metrics port"},
		{"one port for both", func(f *Fleet) { f.Port, f.MetricsPort = 9090, 9090 }, "both 9090"},
		{"default ports clash", func(f *Fleet) { f.Port = 9090 }, "both 9090"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := ok
			c.change(&f)
			dir := filepath.Join(t.TempDir(), "out")
			paths, err := EmitK8s(dir, f)
			if err == nil {
				t.Fatalf("no error; wrote %q", paths)
			}
			if !strings.HasPrefix(err.Error(), "plan: k8s: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q: want plan: k8s: ... %s", err, c.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the folder was made for a fleet refused")
			}
		})
	}
	if _, err := EmitK8s("", ok); err == nil || !strings.HasPrefix(err.Error(), "plan: k8s: ") {
		t.Errorf("no folder: error %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := EmitK8s(file, ok); err == nil || !strings.HasPrefix(err.Error(), "plan: k8s: ") {
		t.Errorf("a file for a folder: error %v", err)
	}
}

// The Dockerfile cannot be built here (no Docker engine in the tests): its
// shape is checked instead, and the tag the Makefile gives the image
// against the image the manifests run by default.
func TestK8sDockerfile(t *testing.T) {
	lines := k8sDockerLines(t, filepath.Join("..", "Dockerfile"))
	var froms []int
	for i, l := range lines {
		if strings.EqualFold(l[0], "FROM") {
			froms = append(froms, i)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("%d FROM stages, want a builder and a runtime stage", len(froms))
	}
	build := lines[froms[0]:froms[len(froms)-1]]
	final := lines[froms[len(froms)-1]:]
	joined := func(ls [][]string) string {
		var b strings.Builder
		for _, l := range ls {
			b.WriteString(strings.Join(l, " ") + "\n")
		}
		return b.String()
	}
	if s := joined(build); !strings.Contains(s, "golang:1.26") || !strings.Contains(s, "CGO_ENABLED=0") || !strings.Contains(s, "./cmd/reelrank") {
		t.Errorf("the builder does not build ./cmd/reelrank with CGO_ENABLED=0 on golang:1.26:\n%s", s)
	}
	var user, entry string
	var copied, exposed bool
	for _, l := range final {
		switch strings.ToUpper(l[0]) {
		case "USER":
			user = l[1]
		case "ENTRYPOINT":
			entry = strings.Join(l[1:], " ")
		case "COPY":
			copied = copied || slices.Contains(l, k8sBinary) && strings.HasPrefix(l[1], "--from=")
		case "EXPOSE":
			exposed = slices.Contains(l, "7070") && slices.Contains(l, "9090")
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" || uid != fmt.Sprint(k8sUID) {
		t.Errorf("the final stage's USER is %q, want %d (the manifests' runAsUser)", user, k8sUID)
	}
	if entry != `["`+k8sBinary+`"]` {
		t.Errorf("ENTRYPOINT %s, want [%q]", entry, k8sBinary)
	}
	if !copied {
		t.Errorf("the final stage does not copy the binary to %s from the builder", k8sBinary)
	}
	if !exposed {
		t.Errorf("the final stage does not expose 7070 and 9090")
	}
	if s := joined(final); !strings.Contains(s, "REELRANK_CACHE=") || !strings.Contains(s, k8sDataDir) {
		t.Errorf("the final stage sets no writable REELRANK_CACHE under %s", k8sDataDir)
	}

	// make image's tag.
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)\s*\??=\s*(\S+)\s*$`).FindAllStringSubmatch(string(mk), -1) {
		vars[m[1]] = m[2]
	}
	m := regexp.MustCompile(`(?m)^image:.*\n((?:\t.*\n)+)`).FindStringSubmatch(string(mk))
	if m == nil {
		t.Fatal("the Makefile has no image target")
	}
	tag := regexp.MustCompile(`docker build\s+(?:.*\s)?-t\s+(\S+)`).FindStringSubmatch(m[1])
	if tag == nil {
		t.Fatalf("make image runs no docker build -t: %q", m[1])
	}
	image := regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(tag[1], func(v string) string { return vars[v[2:len(v)-1]] })
	if image != k8sDefaultImage {
		t.Errorf("make image tags %q, the manifests run %q", image, k8sDefaultImage)
	}
}

// k8sDockerLines returns the Dockerfile's instructions, continuation lines
// joined and comments dropped, each split into words.
func k8sDockerLines(t *testing.T, p string) [][]string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || l == "" && cur == "" {
			continue
		}
		if more, ok := strings.CutSuffix(l, `\`); ok {
			cur += more + " "
			continue
		}
		cur += l
		if w := strings.Fields(cur); len(w) > 0 {
			out = append(out, w)
		}
		cur = ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
