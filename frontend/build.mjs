// Copies the front-end libraries from node_modules into the Python package.
//
// The portal and the operator console serve these files from /static/vendor/<lib>/. They are built
// here, from the versions pinned in package-lock.json, instead of being committed, and the wheel ships
// them as package data so a `pip install` serves them without Node. manifest.json records what was
// copied (name, version, files) so the web app and the tests can tell which build they serve.
//
// Plain Node, no bundler: every library already publishes browser-ready files.

import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const target = resolve(process.env.VPSBRIDGE_VENDOR_DIR ?? join(here, "..", "src", "vpsbridge", "web", "static", "vendor"));

// lib directory -> npm package and the files (or directories) it needs, relative to the package root.
// A pair [from, to] renames; a plain string keeps the name.
const LIBS = {
  "htmx": {
    pkg: "htmx.org",
    files: [["dist/htmx.min.js", "htmx.min.js"], ["dist/htmx.js", "htmx.js"], "LICENSE"],
  },
  "novnc": {
    pkg: "@novnc/novnc",
    // noVNC is a set of ES modules: rfb.js imports the rest of core/ and vendor/pako relatively.
    files: ["core", "vendor", "LICENSE.txt"],
  },
  "uplot": {
    pkg: "uplot",
    files: [["dist/uPlot.iife.min.js", "uPlot.iife.min.js"], ["dist/uPlot.min.css", "uPlot.min.css"], "LICENSE"],
  },
  "swagger-ui": {
    pkg: "swagger-ui-dist",
    files: [
      "swagger-ui-bundle.js",
      "swagger-ui.css",
      "swagger-ui-standalone-preset.js",
      "oauth2-redirect.html",
      "favicon-32x32.png",
      "LICENSE",
      "NOTICE",
    ],
  },
};

function packageVersion(pkgDir) {
  return JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
}

function build() {
  if (!existsSync(modules)) {
    console.error(`build.mjs: ${modules} is missing; run "npm ci" in ${here} first`);
    process.exit(1);
  }
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  const manifest = { generated_by: "frontend/build.mjs", libraries: {} };
  for (const [lib, spec] of Object.entries(LIBS)) {
    const pkgDir = join(modules, ...spec.pkg.split("/"));
    const copied = [];
    for (const entry of spec.files) {
      const [from, to] = Array.isArray(entry) ? entry : [entry, entry];
      const src = join(pkgDir, from);
      if (!existsSync(src)) {
        console.error(`build.mjs: ${spec.pkg} has no ${from}; was the package upgraded?`);
        process.exit(1);
      }
      cpSync(src, join(target, lib, to), { recursive: true });
      copied.push(to);
    }
    manifest.libraries[lib] = { package: spec.pkg, version: packageVersion(pkgDir), files: copied };
  }
  writeFileSync(join(target, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  const summary = Object.entries(manifest.libraries).map(([lib, m]) => `${lib} ${m.version}`).join(", ");
  console.log(`front-end assets -> ${target}: ${summary}`);
}

build();
