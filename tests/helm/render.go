// render: `helm template` for this repository's chart tests, where no helm binary can be
// installed (Debian 12 does not package it). It uses the engine Helm uses - Go's text/template
// with the sprig function library - plus Helm's own functions (include, tpl, required, toYaml,
// fromYaml, toJson, fromJson, lookup) and Helm's value rules: values.yaml, then each -f file
// merged over it (maps merge, everything else replaces); YAML read as JSON (numbers are float64).
//
//	render -chart charts/iron-proxy [-f extra.yaml ...] [-values-out merged.json] > manifests.yaml
//
// Prints every rendered template but NOTES.txt (-notes-out) as "---\n# Source: <chart>/templates/<file>\n..." and exits 1
// with the template's error (e.g. a `fail`) on stderr. Built by tests/e2e/test_helm_chart.py with
// Debian's golang-go, golang-github-masterminds-sprig-dev and golang-github-ghodss-yaml-dev.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func readYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// mergeValues lays `over` on `base` as Helm does for -f files: nested maps merge key by key, any
// other value (lists included) replaces; a null removes the key.
func mergeValues(base, over map[string]interface{}) map[string]interface{} {
	for k, v := range over {
		if v == nil {
			delete(base, k)
			continue
		}
		if vm, ok := v.(map[string]interface{}); ok {
			if bm, ok := base[k].(map[string]interface{}); ok {
				base[k] = mergeValues(bm, vm)
				continue
			}
		}
		base[k] = v
	}
	return base
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func funcMap(root *template.Template, top map[string]interface{}) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env") // Helm removes these: a chart must not read the renderer's environment
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["toJson"] = func(v interface{}) string {
		data, _ := json.Marshal(v)
		return string(data)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return buf.String(), err
	}
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil // as `helm template`: no cluster to ask
	}
	return f
}

func run() error {
	chart := flag.String("chart", "", "chart directory")
	release := flag.String("release", "iron-proxy", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	valuesOut := flag.String("values-out", "", "write the merged values here as JSON")
	notesOut := flag.String("notes-out", "", "write the rendered NOTES.txt here (never a manifest)")
	var files valueFiles
	flag.Var(&files, "f", "values file laid over values.yaml (repeatable)")
	flag.Parse()

	meta, err := readYAML(filepath.Join(*chart, "Chart.yaml"))
	if err != nil {
		return err
	}
	values, err := readYAML(filepath.Join(*chart, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		over, err := readYAML(f)
		if err != nil {
			return err
		}
		values = mergeValues(values, over)
	}
	if *valuesOut != "" {
		data, _ := json.MarshalIndent(values, "", "  ")
		if err := os.WriteFile(*valuesOut, data, 0o644); err != nil {
			return err
		}
	}
	name := fmt.Sprint(meta["name"])
	top := map[string]interface{}{
		"Values": values,
		"Chart": map[string]interface{}{
			"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"],
		},
		"Release": map[string]interface{}{
			"Name": *release, "Namespace": *namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false,
		},
		"Capabilities": map[string]interface{}{"KubeVersion": map[string]interface{}{"Version": "v1.29.0"}},
	}

	paths, err := filepath.Glob(filepath.Join(*chart, "templates", "*"))
	if err != nil {
		return err
	}
	sort.Strings(paths)
	root := template.New(name)
	root.Option("missingkey=zero")
	root.Funcs(funcMap(root, top))
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := root.New(name + "/templates/" + filepath.Base(p)).Parse(string(text)); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	for _, p := range paths {
		base := filepath.Base(p)
		if strings.HasPrefix(base, "_") {
			continue
		}
		tname := name + "/templates/" + base
		top["Template"] = map[string]interface{}{"Name": tname, "BasePath": name + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, tname, top); err != nil {
			return err
		}
		if strings.TrimSpace(buf.String()) == "" {
			continue
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			if *notesOut != "" {
				if err := os.WriteFile(*notesOut, []byte(text), 0o644); err != nil {
					return err
				}
			}
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", tname, text)
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
