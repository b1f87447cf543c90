// Kubernetes manifests for a planned fleet (`reelrank plan --emit k8s DIR`).
//
// EmitK8s writes one file per shard, NAME-shard-I.yaml, holding three
// objects, in the order kubectl apply creates them:
//
//   - a headless Service NAME-shard-I (clusterIP None) over the shard's
//     pods, ports "wire" and "metrics": replica J of shard I answers at
//     NAME-shard-I-J.NAME-shard-I[.NAMESPACE.svc]:PORT;
//   - a PodDisruptionBudget NAME-shard-I, maxUnavailable 1: a drain
//     evicts one replica of a shard at a time, and never the last ready
//     one of a shard that has two or more (an unready replica already
//     uses the one disruption allowed);
//   - a StatefulSet NAME-shard-I of Fleet.Replicas pods, each running
//     `reelrank serve --bundle /var/lib/reelrank/model --shard I/N
//     --addr 0.0.0.0:PORT --metrics 0.0.0.0:METRICSPORT --sample=false`.
//
// Volumes. Each replica has one persistent volume, "data", mounted at
// /var/lib/reelrank, of ModelVolumeBytes+LogVolumeBytes. The model folder
// (`reelrank train --out`) is /var/lib/reelrank/model; serve writes its
// index there on first start, its state (event and catalogue logs,
// checkpoints, arms) in model/served, and the log segments checkpoints
// drop in model/served/archive. The archive is one volume with the logs
// because checkpoints move segments there by rename (engine.Config's
// ArchiveDir must be on the file system of the state folder): a second
// volume mounted at the archive would make every checkpoint fail. Other
// model versions to load (`reelrank model load --bundle`) can be copied
// beside model/ on the same volume.
//
// The volume must hold the model folder before serve can start: until
// then the pod restarts with serve's error. Either create the claims
// data-NAME-shard-I-J beforehand from a volume snapshot holding model/
// (a StatefulSet adopts claims of those names), or apply the manifests
// and copy the folder in from a helper pod that mounts each claim (the
// image has no shell or tar, so kubectl cp into the server cannot work).
// Every shard serves the same folder, as `reelrank train --out` wrote it
// (no served/ in it): --shard picks its part. A volume last served as
// another shard (a re-plan to another shard count) is refused by serve
// until --reshard is added to the StatefulSet's args once; emitting
// again does not add it, as resharding drops the catalogue changes the
// other shards took.
//
// Token. Every pod takes REELRANK_TOKEN from key "token" of the Secret
// Fleet.TokenSecret (default NAME-token), which the operator creates:
//
//	kubectl create secret generic reelrank-token --from-literal=token="$(openssl rand -hex 32)"
//
// No manifest holds a token. The pod does not start until the Secret
// exists, and serve refuses a non-loopback address without a token, so a
// fleet never serves open. An optional key "admin-token" of the same
// Secret becomes REELRANK_ADMIN_TOKEN: without it, model loads,
// promotions and rollbacks are refused.
//
// Resources. Requests are the plan's cores, memory and GPUs. Memory's
// limit is its request (the pod is killed rather than the node short),
// with GOMEMLIMIT at 90% of it so the Go heap collects before the kill;
// GPUs' limit is their request (Kubernetes requires it). CPU has no limit,
// so a burst is not throttled by the CFS quota into the p99; GOMAXPROCS is
// the cores requested rounded up, so the server's admission (8 requests in
// flight per GOMAXPROCS) matches the capacity the plan measured.
//
// Clients. A client.Sharded is given the replicas of each shard, shard i
// at index i (the order --shard numbers them):
//
//	shards := make([][]string, N)
//	for i := range shards {
//		for j := range R {
//			shards[i] = append(shards[i], fmt.Sprintf("reelrank-shard-%d-%d.reelrank-shard-%d.NAMESPACE.svc:7070", i, j, i))
//		}
//	}
//	c, err := client.DialSharded(ctx, shards, client.Options{Token: os.Getenv("REELRANK_TOKEN")}, client.ShardedOptions{})
//
// A replica that is not ready has no DNS record (the Service does not
// publish it): the client redials it later and serves from the others.

package plan

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Fleet is what the Kubernetes manifests are made of: the plan's shards and
// replicas and each replica's resources. Zero values of Name, Image, Port,
// MetricsPort and TokenSecret take their defaults.
type Fleet struct {
	// Name is the app's name and the prefix of every object's name, a
	// DNS label that starts with a letter (default "reelrank").
	Name string
	// Namespace is the objects' namespace; "" writes none (kubectl's
	// current namespace).
	Namespace string
	// Image is the server's container image (default "reelrank:latest",
	// what `make image` builds).
	Image string
	// Shards is the number of shards, Replicas the pods of each.
	Shards   int
	Replicas int
	// CPU is the cores a replica requests (no limit: see the file's
	// comment), MemoryBytes its memory (request and limit), GPUs its
	// nvidia.com/gpu (0: none).
	CPU         float64
	MemoryBytes int64
	GPUs        int
	// ModelVolumeBytes is the room of the model folder (the version
	// folder, its index, the state in served/), LogVolumeBytes that of the
	// event logs and their archive. Both are on one volume, of their sum:
	// the archive must be on the file system of the logs.
	ModelVolumeBytes int64
	LogVolumeBytes   int64
	// StorageClass is the volume's storage class ("": the cluster's
	// default).
	StorageClass string
	// Port is the TCP port of the wire protocol (default 7070),
	// MetricsPort the HTTP port of /metrics, /healthz and /readyz (default
	// 9090).
	Port        int
	MetricsPort int
	// TokenSecret names the Secret, created by the operator, whose key
	// "token" is the clients' token (default NAME-token). Its optional
	// key "admin-token" is the admin token.
	TokenSecret string
}

// The defaults of Fleet's zero values.
const (
	k8sDefaultName        = "reelrank"
	k8sDefaultImage       = "reelrank:latest" // the Makefile's `image` tag
	k8sDefaultPort        = 7070
	k8sDefaultMetricsPort = 9090
)

// The container's paths, the Dockerfile's.
const (
	k8sBinary   = "/usr/local/bin/reelrank"
	k8sDataDir  = "/var/lib/reelrank"
	k8sModelDir = k8sDataDir + "/model"
	k8sUID      = 65532 // distroless's nonroot
)

// Bounds of the values EmitK8s accepts.
const (
	k8sMaxShards   = 4096
	k8sMaxReplicas = 1000
	k8sMaxCPU      = 1024
	k8sMaxGPUs     = 64
	k8sMinMemory   = 32 << 20
	k8sMaxBytes    = 1 << 60 // 1Ei
	// A StatefulSet's name is at most 52 characters: its pods carry the
	// label controller-revision-hash, NAME-HASH, a 63-character value.
	k8sMaxSetName = 52
)

var (
	k8sLabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	k8sSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// EmitK8s writes the manifests for f into dir (created if missing), one
// file NAME-shard-I.yaml per shard holding its Service,
// PodDisruptionBudget and StatefulSet, and returns the paths it wrote,
// shard 0 first. Files NAME-shard-I.yaml for shards the fleet no longer
// has, left by an earlier emit of a larger fleet, are removed, so that
// `kubectl apply -f dir` does not start them again.
func EmitK8s(dir string, f Fleet) ([]string, error) {
	f, err := f.k8sNormalize()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("plan: k8s: no output folder")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plan: k8s: %w", err)
	}
	var paths []string
	for i := range f.Shards {
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		for _, obj := range []any{k8sService(f, i), k8sPDB(f, i), k8sStatefulSet(f, i)} {
			if err := enc.Encode(obj); err != nil {
				return paths, fmt.Errorf("plan: k8s: %w", err)
			}
		}
		if err := enc.Close(); err != nil {
			return paths, fmt.Errorf("plan: k8s: %w", err)
		}
		p := filepath.Join(dir, k8sShardName(f.Name, i)+".yaml")
		if err := k8sWriteFile(p, buf.Bytes()); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	if err := k8sRemoveStale(dir, f.Name, f.Shards); err != nil {
		return paths, err
	}
	return paths, nil
}

// k8sNormalize fills f's defaults and checks its values.
func (f Fleet) k8sNormalize() (Fleet, error) {
	if f.Name == "" {
		f.Name = k8sDefaultName
	}
	if f.Image == "" {
		f.Image = k8sDefaultImage
	}
	if f.Port == 0 {
		f.Port = k8sDefaultPort
	}
	if f.MetricsPort == 0 {
		f.MetricsPort = k8sDefaultMetricsPort
	}
	if f.TokenSecret == "" {
		f.TokenSecret = f.Name + "-token"
	}
	bad := func(format string, args ...any) (Fleet, error) {
		return Fleet{}, fmt.Errorf("plan: k8s: "+format, args...)
	}
	switch {
	case len(f.Name) > 63 || !k8sLabelRE.MatchString(f.Name) || f.Name[0] < 'a' || f.Name[0] > 'z':
		return bad("name %q: want a DNS label: lowercase letters, digits and '-', starting with a letter, ending with a letter or digit", f.Name)
	case f.Shards < 1 || f.Shards > k8sMaxShards:
		return bad("%d shards: want 1 to %d", f.Shards, k8sMaxShards)
	case f.Replicas < 1 || f.Replicas > k8sMaxReplicas:
		return bad("%d replicas per shard: want 1 to %d", f.Replicas, k8sMaxReplicas)
	}
	if n := k8sShardName(f.Name, f.Shards-1); len(n) > k8sMaxSetName {
		return bad("name %q: the StatefulSet %s is longer than %d characters: shorten the name", f.Name, n, k8sMaxSetName)
	}
	if f.Namespace != "" && (len(f.Namespace) > 63 || !k8sLabelRE.MatchString(f.Namespace)) {
		return bad("namespace %q: want a DNS label: lowercase letters, digits and '-'", f.Namespace)
	}
	if strings.TrimSpace(f.Image) != f.Image || strings.ContainsFunc(f.Image, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("image %q: spaces or control characters in it", f.Image)
	}
	switch {
	case math.IsNaN(f.CPU) || f.CPU <= 0 || f.CPU > k8sMaxCPU:
		return bad("%v cores per replica: want more than 0, at most %d", f.CPU, k8sMaxCPU)
	case f.MemoryBytes < k8sMinMemory || f.MemoryBytes > k8sMaxBytes:
		return bad("memory %d bytes per replica: want %s to %s", f.MemoryBytes, k8sBytes(k8sMinMemory), k8sBytes(k8sMaxBytes))
	case f.GPUs < 0 || f.GPUs > k8sMaxGPUs:
		return bad("%d GPUs per replica: want 0 to %d", f.GPUs, k8sMaxGPUs)
	case f.ModelVolumeBytes <= 0 || f.ModelVolumeBytes > k8sMaxBytes:
		return bad("model volume %d bytes: want more than 0, at most %s", f.ModelVolumeBytes, k8sBytes(k8sMaxBytes))
	case f.LogVolumeBytes < 0 || f.LogVolumeBytes > k8sMaxBytes:
		return bad("log volume %d bytes: want 0 to %s", f.LogVolumeBytes, k8sBytes(k8sMaxBytes))
	}
	if f.StorageClass != "" && (len(f.StorageClass) > 253 || !k8sSubdomainRE.MatchString(f.StorageClass)) {
		return bad("storage class %q: want a DNS subdomain: lowercase letters, digits, '-' and '.'", f.StorageClass)
	}
	if len(f.TokenSecret) > 253 || !k8sSubdomainRE.MatchString(f.TokenSecret) {
		return bad("token secret %q: want a DNS subdomain: lowercase letters, digits, '-' and '.'", f.TokenSecret)
	}
	for _, p := range []struct {
		what string
		port int
	}{{"port", f.Port}, {"metrics port", f.MetricsPort}} {
		if p.port < 1 || p.port > 65535 {
			return bad("%s %d: want 1 to 65535", p.what, p.port)
		}
	}
	if f.Port == f.MetricsPort {
		return bad("port and metrics port are both %d", f.Port)
	}
	return f, nil
}

// k8sShardName is shard i's StatefulSet, Service and PDB name.
func k8sShardName(name string, i int) string { return name + "-shard-" + strconv.Itoa(i) }

// k8sWriteFile writes p whole or not at all: a temporary file beside it,
// renamed over it.
func k8sWriteFile(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp*")
	if err != nil {
		return fmt.Errorf("plan: k8s: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("plan: k8s: %w", err)
	}
	return nil
}

// k8sRemoveStale removes dir's files NAME-shard-I.yaml with I >= shards.
func k8sRemoveStale(dir, name string, shards int) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("plan: k8s: %w", err)
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), name+"-shard-")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		num, ok := strings.CutSuffix(rest, ".yaml")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(num)
		if err != nil || i < shards || strconv.Itoa(i) != num {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("plan: k8s: a manifest of a shard the fleet no longer has: %w", err)
		}
	}
	return nil
}

// k8sCPU formats cores as a Kubernetes quantity: whole cores ("2"), else
// millicores rounded up ("1500m", "1m" at least).
func k8sCPU(cores float64) string {
	m := int64(math.Ceil(math.Round(cores*1e6) / 1e3))
	if m < 1 {
		m = 1
	}
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

// k8sBytes formats n bytes as a Kubernetes quantity with the largest
// binary suffix that divides it ("8Gi", "1536Mi"), else in bytes.
func k8sBytes(n int64) string {
	if n == 0 {
		return "0"
	}
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"Ei", 60}, {"Pi", 50}, {"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}} {
		if n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// k8sRoundMi rounds n bytes up to whole mebibytes (n <= k8sMaxBytes).
func k8sRoundMi(n int64) int64 { return (n + 1<<20 - 1) &^ (1<<20 - 1) }

// The objects, as much of the Kubernetes API as the manifests use; yaml
// marshals the fields in this order.

type k8sMeta struct {
	Name        string            `yaml:"name,omitempty"`
	Namespace   string            `yaml:"namespace,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type k8sSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type k8sServiceObj struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   k8sMeta        `yaml:"metadata"`
	Spec       k8sServiceSpec `yaml:"spec"`
}

type k8sServiceSpec struct {
	ClusterIP string            `yaml:"clusterIP"`
	Selector  map[string]string `yaml:"selector"`
	Ports     []k8sServicePort  `yaml:"ports"`
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
	Protocol   string `yaml:"protocol"`
}

type k8sPDBObj struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   k8sMeta    `yaml:"metadata"`
	Spec       k8sPDBSpec `yaml:"spec"`
}

type k8sPDBSpec struct {
	MaxUnavailable int         `yaml:"maxUnavailable"`
	Selector       k8sSelector `yaml:"selector"`
	// AlwaysAllow: a crash-looping replica can be evicted, so that a
	// broken pod does not block a node's drain.
	UnhealthyPodEvictionPolicy string `yaml:"unhealthyPodEvictionPolicy"`
}

type k8sStatefulSetObj struct {
	APIVersion string             `yaml:"apiVersion"`
	Kind       string             `yaml:"kind"`
	Metadata   k8sMeta            `yaml:"metadata"`
	Spec       k8sStatefulSetSpec `yaml:"spec"`
}

type k8sStatefulSetSpec struct {
	ServiceName          string            `yaml:"serviceName"`
	Replicas             int               `yaml:"replicas"`
	PodManagementPolicy  string            `yaml:"podManagementPolicy"`
	MinReadySeconds      int               `yaml:"minReadySeconds"`
	Selector             k8sSelector       `yaml:"selector"`
	Template             k8sPodTemplate    `yaml:"template"`
	VolumeClaimTemplates []k8sClaimObj     `yaml:"volumeClaimTemplates"`
	RetentionPolicy      k8sPVCRetention   `yaml:"persistentVolumeClaimRetentionPolicy"`
	UpdateStrategy       k8sUpdateStrategy `yaml:"updateStrategy"`
}

type k8sUpdateStrategy struct {
	Type string `yaml:"type"`
}

type k8sPVCRetention struct {
	WhenDeleted string `yaml:"whenDeleted"`
	WhenScaled  string `yaml:"whenScaled"`
}

type k8sPodTemplate struct {
	Metadata k8sMeta    `yaml:"metadata"`
	Spec     k8sPodSpec `yaml:"spec"`
}

type k8sPodSpec struct {
	AutomountServiceAccountToken  bool            `yaml:"automountServiceAccountToken"`
	EnableServiceLinks            bool            `yaml:"enableServiceLinks"`
	TerminationGracePeriodSeconds int             `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               k8sPodSecurity  `yaml:"securityContext"`
	Affinity                      k8sAffinity     `yaml:"affinity"`
	Tolerations                   []k8sToleration `yaml:"tolerations,omitempty"`
	Containers                    []k8sContainer  `yaml:"containers"`
	Volumes                       []k8sVolume     `yaml:"volumes"`
}

type k8sPodSecurity struct {
	RunAsNonRoot        bool       `yaml:"runAsNonRoot"`
	RunAsUser           int        `yaml:"runAsUser"`
	RunAsGroup          int        `yaml:"runAsGroup"`
	FSGroup             int        `yaml:"fsGroup"`
	FSGroupChangePolicy string     `yaml:"fsGroupChangePolicy"`
	SeccompProfile      k8sSeccomp `yaml:"seccompProfile"`
}

type k8sSeccomp struct {
	Type string `yaml:"type"`
}

type k8sAffinity struct {
	PodAntiAffinity k8sAntiAffinity `yaml:"podAntiAffinity"`
}

type k8sAntiAffinity struct {
	Preferred []k8sWeightedTerm `yaml:"preferredDuringSchedulingIgnoredDuringExecution"`
}

type k8sWeightedTerm struct {
	Weight int             `yaml:"weight"`
	Term   k8sAffinityTerm `yaml:"podAffinityTerm"`
}

type k8sAffinityTerm struct {
	LabelSelector k8sSelector `yaml:"labelSelector"`
	TopologyKey   string      `yaml:"topologyKey"`
}

type k8sToleration struct {
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"`
	Effect   string `yaml:"effect"`
}

type k8sContainer struct {
	Name            string               `yaml:"name"`
	Image           string               `yaml:"image"`
	Command         []string             `yaml:"command"`
	Args            []string             `yaml:"args"`
	Ports           []k8sContainerPort   `yaml:"ports"`
	Env             []k8sEnv             `yaml:"env"`
	Resources       k8sResources         `yaml:"resources"`
	VolumeMounts    []k8sVolumeMount     `yaml:"volumeMounts"`
	StartupProbe    k8sProbe             `yaml:"startupProbe"`
	ReadinessProbe  k8sProbe             `yaml:"readinessProbe"`
	LivenessProbe   k8sProbe             `yaml:"livenessProbe"`
	SecurityContext k8sContainerSecurity `yaml:"securityContext"`
}

type k8sContainerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
	Protocol      string `yaml:"protocol"`
}

type k8sEnv struct {
	Name      string        `yaml:"name"`
	Value     string        `yaml:"value,omitempty"`
	ValueFrom *k8sEnvSource `yaml:"valueFrom,omitempty"`
}

type k8sEnvSource struct {
	SecretKeyRef k8sSecretKey `yaml:"secretKeyRef"`
}

type k8sSecretKey struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

type k8sResources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

type k8sVolumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
}

type k8sProbe struct {
	HTTPGet             k8sHTTPGet `yaml:"httpGet"`
	InitialDelaySeconds int        `yaml:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int        `yaml:"periodSeconds"`
	TimeoutSeconds      int        `yaml:"timeoutSeconds"`
	FailureThreshold    int        `yaml:"failureThreshold"`
}

type k8sHTTPGet struct {
	Path string `yaml:"path"`
	Port string `yaml:"port"`
}

type k8sContainerSecurity struct {
	RunAsNonRoot             bool            `yaml:"runAsNonRoot"`
	RunAsUser                int             `yaml:"runAsUser"`
	RunAsGroup               int             `yaml:"runAsGroup"`
	AllowPrivilegeEscalation bool            `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   bool            `yaml:"readOnlyRootFilesystem"`
	Capabilities             k8sCapabilities `yaml:"capabilities"`
}

type k8sCapabilities struct {
	Drop []string `yaml:"drop"`
}

type k8sVolume struct {
	Name     string      `yaml:"name"`
	EmptyDir k8sEmptyDir `yaml:"emptyDir"`
}

type k8sEmptyDir struct {
	SizeLimit string `yaml:"sizeLimit"`
}

type k8sClaimObj struct {
	Metadata k8sMeta      `yaml:"metadata"`
	Spec     k8sClaimSpec `yaml:"spec"`
}

type k8sClaimSpec struct {
	AccessModes      []string             `yaml:"accessModes"`
	StorageClassName string               `yaml:"storageClassName,omitempty"`
	Resources        k8sClaimRequirements `yaml:"resources"`
}

type k8sClaimRequirements struct {
	Requests map[string]string `yaml:"requests"`
}

// k8sLabels are shard i's pods' labels, its selector.
func k8sLabels(f Fleet, i int) map[string]string {
	return map[string]string{"app": f.Name, "shard": strconv.Itoa(i)}
}

// k8sObjectLabels are the objects' own labels.
func k8sObjectLabels(f Fleet, i int) map[string]string {
	l := k8sLabels(f, i)
	l["app.kubernetes.io/name"] = "reelrank"
	l["app.kubernetes.io/instance"] = f.Name
	l["app.kubernetes.io/component"] = "server"
	return l
}

func k8sMetaOf(f Fleet, i int) k8sMeta {
	return k8sMeta{Name: k8sShardName(f.Name, i), Namespace: f.Namespace, Labels: k8sObjectLabels(f, i)}
}

func k8sService(f Fleet, i int) k8sServiceObj {
	return k8sServiceObj{
		APIVersion: "v1",
		Kind:       "Service",
		Metadata:   k8sMetaOf(f, i),
		Spec: k8sServiceSpec{
			ClusterIP: "None",
			Selector:  k8sLabels(f, i),
			Ports: []k8sServicePort{
				{Name: "wire", Port: f.Port, TargetPort: "wire", Protocol: "TCP"},
				{Name: "metrics", Port: f.MetricsPort, TargetPort: "metrics", Protocol: "TCP"},
			},
		},
	}
}

func k8sPDB(f Fleet, i int) k8sPDBObj {
	return k8sPDBObj{
		APIVersion: "policy/v1",
		Kind:       "PodDisruptionBudget",
		Metadata:   k8sMetaOf(f, i),
		Spec: k8sPDBSpec{
			MaxUnavailable:             1,
			Selector:                   k8sSelector{MatchLabels: k8sLabels(f, i)},
			UnhealthyPodEvictionPolicy: "AlwaysAllow",
		},
	}
}

// The probes' timing. The server listens (and answers /healthz) only once
// its model is open and its index built, which on a large catalogue's
// first start takes minutes: the startup probe allows 30 minutes. After
// it, readiness is checked every 5 s (out of the Service after 10 s of
// failures) and liveness every 10 s (restarted after 30 s).
const (
	k8sStartupPeriod    = 10
	k8sStartupFailures  = 180
	k8sReadyPeriod      = 5
	k8sReadyFailures    = 2
	k8sLivePeriod       = 10
	k8sLiveFailures     = 3
	k8sProbeTimeout     = 3
	k8sGracePeriod      = 30 // serve's shutdown waits 10 s for requests in flight, then closes the engine
	k8sMinReadySeconds  = 10
	k8sTmpSizeLimit     = "64Mi"
	k8sAntiAffinityTerm = 100
)

func k8sStatefulSet(f Fleet, i int) k8sStatefulSetObj {
	name := k8sShardName(f.Name, i)
	mem := k8sRoundMi(f.MemoryBytes)
	requests := map[string]string{"cpu": k8sCPU(f.CPU), "memory": k8sBytes(mem)}
	limits := map[string]string{"memory": k8sBytes(mem)}
	var tolerations []k8sToleration
	if f.GPUs > 0 {
		requests["nvidia.com/gpu"] = strconv.Itoa(f.GPUs)
		limits["nvidia.com/gpu"] = strconv.Itoa(f.GPUs)
		tolerations = []k8sToleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}
	}
	secret := func(key string, optional bool) *k8sEnvSource {
		return &k8sEnvSource{SecretKeyRef: k8sSecretKey{Name: f.TokenSecret, Key: key, Optional: optional}}
	}
	probe := func(path string, period, failures int) k8sProbe {
		return k8sProbe{HTTPGet: k8sHTTPGet{Path: path, Port: "metrics"}, PeriodSeconds: period, TimeoutSeconds: k8sProbeTimeout, FailureThreshold: failures}
	}
	storage := k8sRoundMi(f.ModelVolumeBytes + f.LogVolumeBytes)
	podMeta := k8sMeta{
		Labels: k8sObjectLabels(f, i),
		Annotations: map[string]string{
			"prometheus.io/scrape": "true",
			"prometheus.io/port":   strconv.Itoa(f.MetricsPort),
			"prometheus.io/path":   "/metrics",
		},
	}
	return k8sStatefulSetObj{
		APIVersion: "apps/v1",
		Kind:       "StatefulSet",
		Metadata:   k8sMetaOf(f, i),
		Spec: k8sStatefulSetSpec{
			ServiceName: name,
			Replicas:    f.Replicas,
			// Replicas of a shard are independent: they start (and load
			// their model) at once, not one after another.
			PodManagementPolicy: "Parallel",
			MinReadySeconds:     k8sMinReadySeconds,
			Selector:            k8sSelector{MatchLabels: k8sLabels(f, i)},
			Template: k8sPodTemplate{
				Metadata: podMeta,
				Spec: k8sPodSpec{
					AutomountServiceAccountToken:  false, // serve never calls the API server
					EnableServiceLinks:            false,
					TerminationGracePeriodSeconds: k8sGracePeriod,
					SecurityContext: k8sPodSecurity{
						RunAsNonRoot: true, RunAsUser: k8sUID, RunAsGroup: k8sUID, FSGroup: k8sUID,
						FSGroupChangePolicy: "OnRootMismatch",
						SeccompProfile:      k8sSeccomp{Type: "RuntimeDefault"},
					},
					Affinity: k8sAffinity{PodAntiAffinity: k8sAntiAffinity{Preferred: []k8sWeightedTerm{{
						Weight: k8sAntiAffinityTerm,
						Term:   k8sAffinityTerm{LabelSelector: k8sSelector{MatchLabels: k8sLabels(f, i)}, TopologyKey: "kubernetes.io/hostname"},
					}}}},
					Tolerations: tolerations,
					Containers: []k8sContainer{{
						Name:    "reelrank",
						Image:   f.Image,
						Command: []string{k8sBinary},
						Args: []string{"serve",
							"--bundle", k8sModelDir,
							"--shard", fmt.Sprintf("%d/%d", i, f.Shards),
							"--addr", fmt.Sprintf("0.0.0.0:%d", f.Port),
							"--metrics", fmt.Sprintf("0.0.0.0:%d", f.MetricsPort),
							"--sample=false",
						},
						Ports: []k8sContainerPort{
							{Name: "wire", ContainerPort: f.Port, Protocol: "TCP"},
							{Name: "metrics", ContainerPort: f.MetricsPort, Protocol: "TCP"},
						},
						Env: []k8sEnv{
							{Name: "REELRANK_TOKEN", ValueFrom: secret("token", false)},
							{Name: "REELRANK_ADMIN_TOKEN", ValueFrom: secret("admin-token", true)},
							{Name: "GOMAXPROCS", Value: strconv.Itoa(max(1, int(math.Ceil(f.CPU-1e-9))))},
							{Name: "GOMEMLIMIT", Value: strconv.FormatInt(mem/10*9>>20, 10) + "MiB"},
							{Name: "HOME", Value: "/tmp"},
							{Name: "REELRANK_CACHE", Value: "/tmp/reelrank"},
						},
						Resources: k8sResources{Requests: requests, Limits: limits},
						VolumeMounts: []k8sVolumeMount{
							{Name: "data", MountPath: k8sDataDir},
							{Name: "tmp", MountPath: "/tmp"},
						},
						StartupProbe:   probe("/healthz", k8sStartupPeriod, k8sStartupFailures),
						ReadinessProbe: probe("/readyz", k8sReadyPeriod, k8sReadyFailures),
						LivenessProbe:  probe("/healthz", k8sLivePeriod, k8sLiveFailures),
						SecurityContext: k8sContainerSecurity{
							RunAsNonRoot: true, RunAsUser: k8sUID, RunAsGroup: k8sUID,
							AllowPrivilegeEscalation: false,
							ReadOnlyRootFilesystem:   true,
							Capabilities:             k8sCapabilities{Drop: []string{"ALL"}},
						},
					}},
					Volumes: []k8sVolume{{Name: "tmp", EmptyDir: k8sEmptyDir{SizeLimit: k8sTmpSizeLimit}}},
				},
			},
			VolumeClaimTemplates: []k8sClaimObj{{
				Metadata: k8sMeta{Name: "data", Labels: k8sLabels(f, i)},
				Spec: k8sClaimSpec{
					AccessModes:      []string{"ReadWriteOnce"},
					StorageClassName: f.StorageClass,
					Resources:        k8sClaimRequirements{Requests: map[string]string{"storage": k8sBytes(storage)}},
				},
			}},
			// The volumes hold served state (logs not yet trained on):
			// deleting or scaling down the set keeps them.
			RetentionPolicy: k8sPVCRetention{WhenDeleted: "Retain", WhenScaled: "Retain"},
			UpdateStrategy:  k8sUpdateStrategy{Type: "RollingUpdate"},
		},
	}
}
