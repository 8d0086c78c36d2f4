@area:run
Feature: docker run -i -t IMAGE sh
  When you run `docker run -i -t ubuntu /bin/bash`: if the image is not present
  locally, Docker pulls it from the configured registry; Docker creates a new
  container; it allocates a read-write filesystem to the container as its final
  layer; it creates a network interface to connect the container to the default
  network and assigns it an IP address; it starts the container and runs the
  command; the container runs interactively and attached to your terminal; when
  you type exit, the container stops but is not removed. You can start it again
  or remove it.

  Background:
    Given the image "busybox" is present locally

  @spec:run.pull-missing @needs:tty
  Scenario: An image missing locally is pulled before the container is created
    Given a tag of "busybox" that exists only in the registry, called "{fresh}"
    When I run "run -i -t --name {c} {fresh} sh" in a terminal
    And I type "echo pulled-$((40+2))"
    Then the terminal shows "pulled-42"
    And I type "exit"
    And the terminal process ends with exit code 0
    When I run "image inspect {fresh}"
    Then it succeeds

  @spec:run.terminal-attached @smoke @needs:tty
  Scenario: The container's shell is attached to the terminal
    When I run "run -i -t --name {c} {busybox} sh" in a terminal
    And I type "echo $((6*7))-from-inside"
    Then the terminal shows "42-from-inside"
    And I type "tty"
    And the terminal shows "/dev/pts/[0-9]+"
    And I type "exit"
    And the terminal process ends with exit code 0

  @spec:run.exit-stops @smoke @needs:tty
  Scenario: Typing exit stops the container but does not remove it
    When I run "run -i -t --name {c} {busybox} sh" in a terminal
    And I type "exit 3"
    Then the terminal process ends with exit code 3
    And the field "State.Status" of "{c}" is "exited"
    And the field "State.ExitCode" of "{c}" is "3"
    When I run "ps -a --filter name={c} --format {{.Status}}"
    Then the output contains "Exited (3)"

  @spec:run.restart-exited @needs:tty
  Scenario: An exited container can be started again, attached, and then removed
    Given I run "run -i -t --name {c} {busybox} sh" in a terminal
    And I type "echo first > /run-count; exit"
    And the terminal process ends with exit code 0
    When I run "start -a -i {c}" in a terminal
    And I type "cat /run-count; echo second-start"
    Then the terminal shows "first\s+second-start"
    And I type "exit 0"
    And the terminal process ends with exit code 0
    When I run "rm {c}"
    Then it succeeds
    And the container "{c}" does not exist

  @spec:run.rw-layer-survives-restart
  Scenario: A file written in the container survives a stop and a start
    Given I successfully run "run --name {c} {busybox} sh -c 'echo kept > /data.txt'"
    When I successfully run "start -a {c}"
    And I successfully run "cp {c}:/data.txt {tmp}/copied.txt"
    Then the host file "{tmp}/copied.txt" contains "kept"

  @spec:run.rw-layer-private
  Scenario: A file written in one container is absent from a new container of the same image
    Given I successfully run "run --name {c} {busybox} sh -c 'echo mine > /private.txt'"
    When I run "run --rm {busybox} cat /private.txt"
    Then it fails
    And the error output contains "No such file or directory"

  @spec:run.rw-layer-removed
  Scenario: Removing the container discards its layer and leaves the image unchanged
    Given I remember the field "Id" of "{busybox}" as "image_id"
    And I successfully run "run --name {c} {busybox} sh -c 'rm /bin/ls; echo x > /gone.txt'"
    When I successfully run "rm {c}"
    Then the field "Id" of "{busybox}" is "{$image_id}"
    When I run "run --rm {busybox} sh -c 'ls / >/dev/null && test ! -e /gone.txt && echo clean'"
    Then it succeeds
    And the output is "clean"

  @spec:run.network-interface @needs:bridge-network
  Scenario: The container gets a network interface with an address in the default network
    Given I remember the subnet of network "{default_network}" as "subnet"
    When I run "run --rm {busybox} ip -4 -o addr show eth0"
    Then it succeeds
    And the output contains an address in "{$subnet}"

  @spec:run.network-reach @needs:bridge-network
  Scenario: Containers on the default network reach each other
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    And I remember the address of "{c}" on network "{default_network}" as "peer"
    When I run "run --rm {busybox} ping -c 1 -W 5 {$peer}"
    Then it succeeds
    And the output contains "1 packets received"

  @spec:run.exit-code
  Scenario: docker run exits with the exit code of the container's command
    When I run "run --name {c} {busybox} sh -c 'exit 7'"
    Then the exit code is 7

  @spec:run.exit-127 @smoke
  Scenario: A command that cannot be found gives exit code 127
    When I run "run --name {c} {busybox} no-such-command-here"
    Then the exit code is 127

  @spec:run.exit-126
  Scenario: A command that cannot be invoked gives exit code 126
    When I run "run --name {c} {busybox} /etc/passwd"
    Then the exit code is 126

  @spec:run.exit-125
  Scenario: An error of the daemon itself gives exit code 125
    When I run "run --name {c} --no-such-flag {busybox} true"
    Then the exit code is 125

  @spec:run.rm-flag
  Scenario: --rm removes the container when it exits
    When I run "run --rm --name {c} {busybox} echo bye"
    Then it succeeds
    And the output is "bye"
    And the container "{c}" does not exist

  @spec:run.detach
  Scenario: -d runs the container in the background and prints its ID
    When I run "run -d --name {c} {busybox} sleep 600"
    Then it succeeds
    And the output matches "^[0-9a-f]{64}$"
    And the field "State.Running" of "{c}" is "true"

  @spec:run.env
  Scenario: -e sets environment variables beside the image's own
    When I run "run --rm -e GREETING=hello {busybox} sh -c 'echo $GREETING; echo $PATH'"
    Then it succeeds
    And the output contains "hello"
    And the output contains "/usr/bin"

  @spec:run.name-unique
  Scenario: A container name can be used only once
    Given I successfully run "create --name {c} {busybox} true"
    When I run "create --name {c} {busybox} true"
    Then it fails
    And the error output contains "already in use"

  @spec:run.workdir-user
  Scenario: -w sets the working directory and -u the user
    When I run "run --rm -w /tmp -u 65534 {busybox} sh -c 'pwd; id -u'"
    Then it succeeds
    And the output is "/tmp\n65534"

  @spec:run.entrypoint
  Scenario: --entrypoint replaces the image's entrypoint
    When I run "run --rm --entrypoint echo {busybox} from-entrypoint"
    Then it succeeds
    And the output is "from-entrypoint"

  @spec:run.default-cmd
  Scenario: Without a command the image's CMD runs
    When I run "run --rm -i {busybox}" with input "echo via-default-cmd"
    Then it succeeds
    And the output is "via-default-cmd"

  @spec:run.stdin-eof
  Scenario: With -i the container reads standard input until end of file
    When I run "run --rm -i {busybox} sh -c 'wc -l; echo done'" with input "a\nb\nc\n"
    Then it succeeds
    And the output is "3\ndone"
