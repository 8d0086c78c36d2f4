@area:images
Feature: Images
  An image is a read-only template with instructions for creating a container.
  Images are made of layers; an image based on another shares its layers.
  Images are pulled from and pushed to a registry, by tag or by digest.

  Background:
    Given the image "busybox" is present locally

  @spec:images.read-only @smoke
  Scenario: A container's changes never alter its image
    Given I remember the field "Id" of "{busybox}" as "image_id"
    And I successfully run "run --name {c} {busybox} sh -c 'echo changed > /etc/motd; rm /bin/cat'"
    When I run "run --rm {busybox} sh -c 'test ! -e /etc/motd && test -e /bin/cat && echo pristine'"
    Then it succeeds
    And the output is "pristine"
    And the field "Id" of "{busybox}" is "{$image_id}"

  @spec:images.layers
  Scenario: An image is made of layers listed in its root filesystem
    When I run "image inspect --format '{{len .RootFS.Layers}}' {busybox}"
    Then it succeeds
    And the output is "2"

  @spec:images.shared-layers
  Scenario: An image built on another shares its layers
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      RUN echo layered > /layered.txt
      """
    And I successfully run "build -t {img} {ctx}"
    When I compare the layers of "{img}" with those of "{busybox}"
    Then the first 2 layers are the same
    And "{img}" has 1 more layer

  @spec:images.history
  Scenario: The history of an image lists the steps that made its layers
    When I run "history --no-trunc {busybox}"
    Then it succeeds
    And the output contains "COPY busybox-static with every applet linked"
    And the output contains "COPY /etc and the usual directories"

  @spec:images.pull-tag
  Scenario: An image is pulled by name and tag
    Given a tag of "busybox" that exists only in the registry, called "{fresh}"
    When I run "pull {fresh}"
    Then it succeeds
    When I run "images --format {{.Repository}}:{{.Tag}}"
    Then the output contains "{fresh}"

  @spec:images.pull-digest
  Scenario: An image is pulled by digest
    Given a tag of "busybox" that exists only in the registry, called "{fresh}"
    When I run "pull {busybox_repo}@{busybox_digest}"
    Then it succeeds
    And the field "RepoDigests" of "{busybox_repo}@{busybox_digest}" contains "{busybox_digest}"

  @spec:images.pull-missing-tag
  Scenario: Pulling a tag the registry does not have fails and says so
    When I run "pull {busybox_repo}:no-such-tag"
    Then it fails
    And the error output contains "no-such-tag"

  @spec:images.invalid-reference
  Scenario: An invalid image reference is rejected
    When I run "pull Not_A/Valid::Name"
    Then it fails
    And the error output contains "invalid reference format"

  @spec:images.tag
  Scenario: A tag is a second name for the same image
    When I successfully run "tag {busybox} {img}:v1"
    Then the field "Id" of "{img}:v1" is the same as the field "Id" of "{busybox}"

  @spec:images.untag
  Scenario: Removing one tag keeps the image while another name points at it
    Given I successfully run "tag {busybox} {img}:one"
    And I successfully run "tag {busybox} {img}:two"
    When I run "rmi {img}:one"
    Then it succeeds
    And the output contains "Untagged"
    And the image "{img}:one" does not exist
    And the field "Id" of "{img}:two" is the same as the field "Id" of "{busybox}"

  @spec:images.remove-in-use
  Scenario: An image used by a container cannot be removed unless forced
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      LABEL purpose=in-use
      RUN touch /in-use
      """
    And I successfully run "build -t {img} {ctx}"
    And I successfully run "create --name {c} {img} true"
    When I run "rmi {img}"
    Then it fails
    And the error output matches "(is using|in use|used by)"
    When I run "rmi -f {img}"
    Then it succeeds

  @spec:images.inspect-config
  Scenario: Inspecting an image shows its platform and default command
    When I run "image inspect {busybox}"
    Then it succeeds
    And the JSON output field "0.Os" is "linux"
    And the JSON output field "0.Architecture" is "amd64"
    And the JSON output field "0.Config.Cmd" is "['sh']"

  @spec:images.save-load
  Scenario: An image saved to a tar archive loads back with the same ID
    Given I successfully run "tag {busybox} {img}:saved"
    And I remember the field "Id" of "{img}:saved" as "image_id"
    When I successfully run "save -o {tmp}/image.tar {img}:saved"
    And I successfully run "rmi {img}:saved"
    And I successfully run "load -i {tmp}/image.tar"
    Then the field "Id" of "{img}:saved" is "{$image_id}"

  @spec:images.bash-image
  Scenario: A Debian image runs bash
    When I run "run --rm {debian} bash -c 'echo ${BASH_VERSION%%.*}; cat /etc/debian_version'"
    Then it succeeds
    And the output matches "^5\n12\.[0-9]+$"
