@area:containers
Feature: Containers
  A container is a runnable instance of an image. You can create, start, stop,
  move, or delete a container. When a container is removed, any changes to its
  state that are not stored in persistent storage disappear.

  Background:
    Given the image "busybox" is present locally

  @spec:containers.create
  Scenario: create makes a container that is not running
    When I run "create --name {c} {busybox} sleep 600"
    Then it succeeds
    And the output matches "^[0-9a-f]{64}$"
    And the field "State.Status" of "{c}" is "created"
    And the field "State.Running" of "{c}" is "false"

  @spec:containers.start
  Scenario: start runs a created container
    Given I successfully run "create --name {c} {busybox} sleep 600"
    When I run "start {c}"
    Then it succeeds
    And the field "State.Status" of "{c}" is "running"
    And the field "State.Pid" of "{c}" is a number above 0

  @spec:containers.stop-sigterm
  Scenario: stop sends SIGTERM to the main process
    Given I successfully run "run -d --name {c} {busybox} sh -c 'trap \"echo got-term; exit 0\" TERM; echo ready; while true; do sleep 0.2; done'"
    And I wait until the logs of "{c}" contain "ready"
    When I run "stop -t 20 {c}"
    Then it succeeds
    And the field "State.ExitCode" of "{c}" is "0"
    When I run "logs {c}"
    Then the output contains "got-term"

  @spec:containers.stop-sigkill @smoke
  Scenario: stop sends SIGKILL when the process outlives the timeout
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    When I run "stop -t 1 {c}"
    Then it succeeds
    And it took at least 1 second
    And the field "State.Status" of "{c}" is "exited"
    And the field "State.ExitCode" of "{c}" is "137"

  @spec:containers.kill
  Scenario: kill sends SIGKILL by default
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    When I run "kill {c}"
    Then it succeeds
    And I wait until the field "State.Status" of "{c}" is "exited"
    And the field "State.ExitCode" of "{c}" is "137"

  @spec:containers.kill-signal
  Scenario: kill -s delivers the chosen signal
    Given I successfully run "run -d --name {c} {busybox} sh -c 'trap \"echo got-usr1; exit 5\" USR1; echo ready; while true; do sleep 0.2; done'"
    And I wait until the logs of "{c}" contain "ready"
    When I run "kill -s USR1 {c}"
    Then it succeeds
    And I wait until the field "State.Status" of "{c}" is "exited"
    And the field "State.ExitCode" of "{c}" is "5"

  @spec:containers.restart
  Scenario: restart stops and starts the container again
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    And I remember the field "State.StartedAt" of "{c}" as "first_start"
    When I run "restart -t 1 {c}"
    Then it succeeds
    And the field "State.Status" of "{c}" is "running"
    And the field "State.StartedAt" of "{c}" is not "{$first_start}"

  @spec:containers.rename
  Scenario: rename gives a container a new name
    Given I successfully run "create --name {c} {busybox} true"
    When I run "rename {c} {c2}"
    Then it succeeds
    And the container "{c}" does not exist
    When I run "ps -a --filter name={c2} --format {{.Names}}"
    Then the output is "{c2}"

  @spec:containers.rm-running-refused
  Scenario: A running container cannot be removed without force
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    When I run "rm {c}"
    Then it fails
    And the error output contains "running"
    And the field "State.Running" of "{c}" is "true"

  @spec:containers.rm-force
  Scenario: rm -f removes a running container
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    When I run "rm -f {c}"
    Then it succeeds
    And the container "{c}" does not exist

  @spec:containers.inspect-state
  Scenario: inspect shows the state of an exited container
    Given I successfully run "run --name {c} {busybox} true"
    When I run "inspect {c}"
    Then it succeeds
    And the JSON output field "0.State.Status" is "exited"
    And the JSON output field "0.State.Running" is "false"
    And the JSON output field "0.State.ExitCode" is "0"
    And the JSON output field "0.State.FinishedAt" does not start with "0001"

  @spec:containers.commit
  Scenario: commit makes a new image from a container's changes
    Given I successfully run "run --name {c} {busybox} sh -c 'echo committed > /state.txt'"
    When I run "commit {c} {img}:snap"
    Then it succeeds
    When I run "run --rm {img}:snap cat /state.txt"
    Then it succeeds
    And the output is "committed"

  @spec:containers.restart-on-failure
  Scenario: on-failure:N restarts a failing container at most N times
    When I successfully run "run -d --name {c} --restart on-failure:2 {busybox} sh -c 'exit 3'"
    Then I wait until the field "State.Status" of "{c}" is "exited" and "RestartCount" is "2"
    And the field "State.ExitCode" of "{c}" is "3"

  @spec:containers.restart-always
  Scenario: always restarts a container whose process exits
    When I successfully run "run -d --name {c} --restart always {busybox} sh -c 'sleep 0.3; exit 0'"
    Then I wait until the field "RestartCount" of "{c}" is at least 1

  @spec:containers.restart-no
  Scenario: Without a restart policy an exited container stays exited
    When I successfully run "run -d --name {c} {busybox} sh -c 'exit 4'"
    Then I wait until the field "State.Status" of "{c}" is "exited"
    And the field "RestartCount" of "{c}" is "0"

  @spec:containers.pause @needs:pause
  Scenario: pause freezes the processes and unpause resumes them
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    When I run "pause {c}"
    Then it succeeds
    And the field "State.Paused" of "{c}" is "true"
    When I run "unpause {c}"
    Then it succeeds
    And the field "State.Paused" of "{c}" is "false"
    And the field "State.Running" of "{c}" is "true"

  @spec:containers.logs
  Scenario: logs shows what the container wrote, --tail the last lines
    Given I successfully run "run --name {c} {busybox} sh -c 'for i in 1 2 3 4 5; do echo line-$i; done'"
    When I run "logs {c}"
    Then the output is "line-1\nline-2\nline-3\nline-4\nline-5"
    When I run "logs --tail 2 {c}"
    Then the output is "line-4\nline-5"

  @spec:containers.logs-stderr
  Scenario: logs keeps standard error apart from standard output
    Given I successfully run "run --name {c} {busybox} sh -c 'echo to-out; echo to-err >&2'"
    When I run "logs {c}"
    Then the output is "to-out"
    And the error output contains "to-err"

  @spec:containers.ps-filter
  Scenario: ps lists running containers; -a includes stopped ones; filters select
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    And I successfully run "run --name {c2} {busybox} true"
    When I run "ps --format {{.Names}}"
    Then the output contains "{c}"
    And the output does not contain "{c2}"
    When I run "ps -a --filter status=exited --filter name={c2} --format {{.Names}}"
    Then the output is "{c2}"

  @spec:containers.ps-quiet
  Scenario: ps -q prints only container IDs
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    When I run "ps -q --no-trunc --filter name={c}"
    Then the output matches "^[0-9a-f]{64}$"

  @spec:containers.labels
  Scenario: Labels are kept and can be used to filter
    Given I successfully run "create --name {c} --label dockspec.test={c} {busybox} true"
    When I run "ps -a --filter label=dockspec.test={c} --format {{.Names}}"
    Then the output is "{c}"

  @spec:containers.wait
  Scenario: wait blocks until the container stops and prints its exit code
    Given I successfully run "run -d --name {c} {busybox} sh -c 'sleep 1; exit 9'"
    When I run "wait {c}"
    Then it succeeds
    And the output is "9"

  @spec:containers.top
  Scenario: top lists the processes running in a container
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    When I run "top {c}"
    Then it succeeds
    And the output contains "sleep 600"
