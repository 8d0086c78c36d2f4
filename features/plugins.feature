@area:plugins
Feature: Volume plugins
  A volume plugin is a process beside the engine that serves Docker's plugin
  protocol (JSON over HTTP) on a UNIX socket. The engine finds it by name in the
  plugin directories the first time it is used, activates it with a handshake,
  and then asks it to create, mount, unmount and remove the volumes of its
  driver. Here the plugin is the repository's example driver
  (examples/volume-plugin/dirvolume.py), which keeps each volume as a
  directory under {plugin_root}; {plugin} is its name for this run.

  @spec:plugins.discovery-socket @needs:legacy-plugins
  Scenario: A plugin whose socket is in the plugin directory is found by name and creates the volume
    When I run "volume create --driver {plugin} {vol}"
    Then it succeeds
    And the field "Driver" of volume "{vol}" is "{plugin}"
    And the example plugin holds a volume "{vol}"

  @spec:plugins.discovery-spec @needs:legacy-plugins
  Scenario: A plugin named by a .spec file is reached at the URL the file holds
    Given a plugin spec file names "{plugspec}" with the address of the socket of "{plugin}"
    When I run "volume create --driver {plugspec} {vol}"
    Then it succeeds
    And the field "Driver" of volume "{vol}" is "{plugspec}"
    And the example plugin holds a volume "{vol}"

  @spec:plugins.volume-mount @needs:legacy-plugins
  Scenario: A container's volume of a plugin driver is the plugin's directory, bind-mounted
    When I run "run --rm -v {vol}:/data --volume-driver {plugin} {busybox} sh -c 'echo written-inside > /data/file'"
    Then it succeeds
    And the field "Driver" of volume "{vol}" is "{plugin}"
    And the host file "{plugin_root}/{vol}/file" contains "written-inside"
    And the field "Mountpoint" of volume "{vol}" is "{plugin_root}/{vol}"

  @spec:plugins.volume-list @needs:legacy-plugins
  Scenario: Volumes of a plugin are listed with their driver
    Given I successfully run "volume create --driver {plugin} {vol}"
    When I run "volume ls --format '{{.Driver}} {{.Name}}'"
    Then it succeeds
    And the output contains "{plugin} {vol}"

  @spec:plugins.volume-remove @needs:legacy-plugins
  Scenario: Removing a plugin's volume asks the plugin to delete it
    Given I successfully run "volume create --driver {plugin} {vol}"
    When I run "volume rm {vol}"
    Then it succeeds
    And the example plugin holds no volume "{vol}"
    And the volume "{vol}" does not exist

  @spec:plugins.garbage-answer @needs:legacy-plugins
  Scenario: A plugin that answers garbage fails the create with an error and no container is left
    Given a volume plugin "{plugbad}" that answers garbage is running
    When I run "create --name {c} -v {vol}:/data --volume-driver {plugbad} {busybox} true"
    Then it fails
    And the error output contains "{plugbad}"
    And the container "{c}" does not exist
    And the volume "{vol}" does not exist

  @spec:plugins.no-answer @needs:legacy-plugins
  Scenario: A plugin whose socket nobody answers fails the create with an error and no container is left
    Given a volume plugin "{plugdead}" has a socket that nobody answers
    When I run "create --name {c} -v {vol}:/data --volume-driver {plugdead} {busybox} true"
    Then it fails
    And the error output matches "(?i)connection refused"
    And the container "{c}" does not exist
    And the volume "{vol}" does not exist
