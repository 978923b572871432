#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root): installs what it
# needs, starts the test bed's registry, runs every check, and fails if any fails.
#   bash scripts/test.sh            everything
#   bash scripts/test.sh STEP...    some of: lint pytest tomlkit ansible-test docs testbed molecule ee
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash testbed/install-host-deps.sh
source scripts/venv.sh
export CONTAINERS_CONF="$repo/testbed/containers.conf"
trap 'bash testbed/registry.sh stop >/dev/null 2>&1 || true' EXIT

# Each step chains with && : set -e does not apply inside an `if` condition.
lint() {
    # ansible-lint also checks execution-environment.yml against ansible-builder's schema;
    # antsibull-docs checks the plugins' and the role's docs as the Ansible docs site builds them;
    # the changelog fragments are checked here too, minutes before ansible-test's sanity step would;
    # the CI workflow is checked as YAML and against GitHub's workflow schema (bundled, offline).
    ruff check . && ansible-lint &&
        antsibull-docs lint-collection-docs --plugin-docs . && antsibull-changelog lint &&
        yamllint -s .github/workflows/ci.yml &&
        check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/ci.yml
}
run_pytest() {
    # unit and playbook tests, packaging, and the benchmark's smoke run (tests/ee: the ee step;
    # tests/testbed: the testbed step)
    pytest tests --ignore=tests/ee --ignore=tests/testbed
}
run_tomlkit() {
    # the unit tests with the lowest and the newest tomlkit requirements.txt accepts
    bash scripts/tomlkit-range.sh
}
run_ansible_test() {
    bash scripts/ansible-test.sh sanity units
}
run_docs() {
    # the docsite (guides and the plugins' and role's docs) from the collection tarball, offline, sphinx -W
    bash scripts/docs.sh
}
run_testbed() {
    # The stand-ins behave as pmk-node-facts.md says real PMK nodes do (testbed/README.md); then
    # rollouts interrupted (SIGINT, SIGKILL, a cut SSH session) or run twice at once, on test bed nodes.
    bash testbed/registry.sh start && bash testbed/smoke.sh &&
        KUBENODE_NODE_IMAGE=$(bash testbed/build-node-image.sh | tail -n 1) pytest tests/testbed
}
run_molecule() {
    # A scratch home keeps molecule's and ansible's files out of the real one.
    bash testbed/registry.sh start && bash testbed/build-node-image.sh &&
        HOME=/tmp/kubenode-home ANSIBLE_HOME=/tmp/kubenode-home/.ansible molecule test --all
}
run_ee() {
    # The execution environment: ansible-builder's build context, the image (scripts/ee.sh build),
    # and playbooks/configure-mirror.yml run in it through ansible-runner as AWX does.
    bash testbed/registry.sh start && bash testbed/build-node-image.sh >/dev/null &&
        KUBENODE_EE_IMAGE=$(bash scripts/ee.sh build | tail -n 1) && export KUBENODE_EE_IMAGE &&
        pytest tests/ee
}

if (($#)); then steps=("$@"); else steps=(lint pytest tomlkit ansible-test docs testbed molecule ee); fi
passed=0 failed=0 failures=""
for step in "${steps[@]}"; do
    echo
    echo "=================== $step"
    case $step in
        lint) command=lint ;;
        pytest) command=run_pytest ;;
        tomlkit) command=run_tomlkit ;;
        ansible-test) command=run_ansible_test ;;
        docs) command=run_docs ;;
        testbed) command=run_testbed ;;
        molecule) command=run_molecule ;;
        ee) command=run_ee ;;
        *) echo "unknown step: $step" >&2; exit 2 ;;
    esac
    start=$SECONDS
    if $command; then
        passed=$((passed + 1)); echo "=================== $step: passed in $((SECONDS - start)) s"
    else
        failed=$((failed + 1)); failures="$failures $step"; echo "=================== $step: FAILED in $((SECONDS - start)) s"
    fi
done
echo
[[ -z $failures ]] || echo "failed steps:$failures"
echo "steps: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
