"""Ground truth from an executed timeline: voice split, AFK, downtime, messages, invites."""

from datetime import UTC, datetime, timedelta

from scripts.scenario.truth import Happened, Truth

AFK = 30
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def voice(t, member, channel, camera=False, stream=False):
    return Happened(t, "voice", member, {"channel": channel, "camera": camera, "stream": stream})


def test_voice_is_split_by_camera_and_stream_and_afk_is_not_activity():
    truth = Truth(AFK, downtime_cap_s=600).compute([
        voice(0, 1, 20, camera=True), voice(10, 1, 20, camera=False, stream=True), voice(25, 1, AFK),
        voice(40, 1, 20), Happened(45, "leave", 1), Happened(50, "end"),
    ])
    m = truth.members[1]
    assert (m.voice_s, m.cam_on_s, m.cam_off_s, m.stream_s) == (30, 10, 20, 15)


def test_downtime_is_credited_with_the_state_at_the_stop_up_to_the_cap():
    truth = Truth(AFK, downtime_cap_s=5).compute([
        voice(0, 1, 20, camera=True), Happened(10, "bot_down"), Happened(30, "bot_up"), Happened(40, "end"),
    ])
    assert truth.members[1].cam_on_s == 10 + 5 + 10


def test_leaving_during_downtime_is_unobservable_not_truth():
    truth = Truth(AFK, downtime_cap_s=600).compute([
        voice(0, 1, 20), Happened(10, "bot_down"), Happened(14, "leave", 1), Happened(20, "bot_up"),
        Happened(30, "end"),
    ])
    assert truth.members[1].voice_s == 10
    assert truth.members[1].unobservable_voice_s == 4


def test_messages_while_the_bot_is_down_are_truth_where_the_history_is_readable():
    """Issue 19: counted from channel history after the restart; unobservable only in a channel
    whose history the bot may not read."""
    def message(t, channel):
        return Happened(t, "message", 1, {"channel": channel})

    truth = Truth(AFK, 600, unreadable={11}).compute([
        message(0, 10), Happened(1, "bot_down"), message(2, 10), message(2.5, 11), Happened(3, "bot_up"),
        Happened(3.5, "bot_connected"), message(4, 10), message(4.5, 11), Happened(5, "end"),
    ])
    assert (truth.members[1].messages, truth.members[1].unobservable_messages) == (4, 1)


def test_messages_per_channel_a_thread_under_its_parent_and_an_erase_changes_nothing():
    """The member rules per channel (a thread's messages under its parent channel); an erase empties
    the member's count, not the channels'."""
    def message(t, channel, member=1):
        return Happened(t, "message", member, {"channel": channel})

    truth = Truth(AFK, 600, unreadable={11}, parents={13: 10}).compute([
        message(0, 10), message(0.5, 13), message(0.9, 11),
        Happened(1, "bot_down", data={"signal": "SIGKILL"}), message(2, 13), message(2.5, 11),
        Happened(3, "bot_up"),
        Happened(3.5, "bot_connected"), message(4, 11, 2), Happened(5, "erase", 1, {"done": 5.2}),
        message(6, 10), Happened(7, "end"),
    ])
    assert truth.members[1].messages == 1  # erased at 5: only the message after it
    general, unreadable = truth.channels[10], truth.channels[11]
    assert (general.messages, general.unobservable_messages) == (4, 0)  # 10 and its thread 13
    assert 13 not in truth.channels
    assert (unreadable.messages, unreadable.losable_messages, unreadable.unobservable_messages) == (2, 1, 1)


def test_a_guild_outage_and_a_lost_session_are_downtime_like_a_stopped_bot():
    truth = Truth(AFK, downtime_cap_s=600).compute([
        voice(0, 1, 20, camera=True), voice(0, 2, 20), Happened(10, "guild_down"), Happened(12, "leave", 2),
        Happened(13, "message", 3), Happened(20, "guild_up"), Happened(25, "session_lost"),
        Happened(25.5, "message", 3), Happened(26, "session_back"), Happened(27, "message", 3),
        Happened(30, "end"),
    ])
    assert truth.members[1].cam_on_s == 30  # stayed in voice through both
    assert (truth.members[2].voice_s, truth.members[2].unobservable_voice_s) == (10, 2)
    assert (truth.members[3].messages, truth.members[3].unobservable_messages) == (3, 0)  # from history


def test_overlapping_downtimes_count_once_from_the_first_to_the_last():
    truth = Truth(AFK, downtime_cap_s=5).compute([
        voice(0, 1, 20), Happened(10, "guild_down"), Happened(12, "bot_down"), Happened(14, "bot_up"),
        Happened(16, "message", 2), Happened(20, "guild_up"), Happened(30, "end"),
    ])
    assert truth.members[1].voice_s == 10 + 5 + 10  # one downtime of 10 s, capped at 5
    assert truth.members[2].messages == 1  # the bot was back, the guild was not: from history


def test_a_restarting_bot_sees_messages_only_once_its_session_is_ready():
    """Between the process start (`bot_up`) and its READY (`bot_connected`) a message reaches at most
    the old session's replay buffer: unobservable in an unreadable channel."""
    truth = Truth(AFK, 600, unreadable={11}).compute([
        Happened(0, "bot_down"), Happened(1, "bot_up"), Happened(1.5, "message", 1, {"channel": 11}),
        Happened(2, "bot_connected"), Happened(2.5, "message", 1, {"channel": 11}), Happened(3, "end"),
    ])
    assert (truth.members[1].messages, truth.members[1].unobservable_messages) == (1, 1)


def test_a_message_no_bot_session_received_is_unobservable_only_where_history_is_unreadable():
    truth = Truth(AFK, 600, unreadable={11}).compute([
        Happened(0, "message", 1, {"delivered": 0, "channel": 10}),
        Happened(1, "message", 1, {"delivered": 2}),
        Happened(1.5, "message", 1, {"delivered": 0, "channel": 11}), Happened(2, "end"),
    ])
    assert (truth.members[1].messages, truth.members[1].unobservable_messages) == (2, 1)


def test_invites_regular_left_fake_bonus_and_a_rejoin_counting_once():
    old, new = T0 - timedelta(days=400), T0 - timedelta(days=1)

    def join(t, member, inviter, created):
        return Happened(t, "join", member, {"via": "abc", "inviter": inviter, "created": created,
                                            "joined_at": T0 + timedelta(seconds=t)})

    truth = Truth(AFK, 600).compute([
        join(0, 201, 101, old), join(1, 202, 101, old), join(2, 203, 101, new), join(3, 204, 204, old),
        Happened(4, "leave", 202), Happened(5, "leave", 201), join(6, 201, 102, old),
        Happened(7, "bonus", 101, {"amount": 3}), Happened(8, "end"),
    ])
    counts = truth.inviters[101]
    assert (counts.regular, counts.left, counts.fake, counts.bonus, counts.total) == (3, 1, 1, 3, 4)
    assert truth.members[201].inviter == 101  # the rejoin through bob's code still counts for ada
    assert truth.inviters[204].fake == 1  # self-invite


def test_an_erase_clears_the_members_counts_and_join_and_tracking_starts_again():
    """`/data erase` (confirmed, from 20 to 20.4): messages and voice before it are gone; messages
    sent just before it or during it may go either way; the open voice session is forgotten until
    the member's next voice change; their join is gone, so a rejoin is a first join."""
    def message(t):
        return Happened(t, "message", 1, {"channel": 10})

    def join(t, inviter):
        return Happened(t, "join", 1, {"via": "abc", "inviter": inviter, "created": T0 - timedelta(days=90),
                                       "joined_at": T0 + timedelta(seconds=t)})

    truth = Truth(AFK, 600).compute([
        join(0, 5), voice(1, 1, 20), message(2), message(19.8), Happened(20, "erase", 1, {"done": 20.4}),
        message(20.2), message(21), voice(30, 1, 21), Happened(31, "leave", 1), join(32, 6),
        message(33), Happened(40, "end"),
    ])
    m = truth.members[1]
    assert (m.messages, m.maybe_messages, m.losable_messages) == (3, 1, 1)
    assert m.voice_s == 1 and round(m.erase_voice_s, 3) == 0.4  # 30 to 31 only: untracked from 20 to 30
    assert (m.inviter, m.joined_at) == (6, T0 + timedelta(seconds=32))
    assert (truth.inviters[5].regular, truth.inviters[6].regular) == (0, 1)


def test_a_member_erased_in_voice_is_tracked_again_from_the_next_reconciliation():
    """Erased while in voice and still there: untracked until their next voice change, or until
    the bot reconciles the guild (a restart here), which finds them in voice with no stored session
    and tracks them from then on (campaign long run, seed 77: the truth kept them at 0)."""
    truth = Truth(AFK, 600).compute([
        voice(0, 1, 20), voice(0, 2, 20), Happened(10, "erase", 1, {"done": 10.2}),
        Happened(12, "bot_down", None, {"signal": "SIGTERM"}), Happened(15, "bot_up"), Happened(30, "end"),
    ])
    assert truth.members[1].voice_s == 15  # 15 to 30: the restart's reconciliation
    assert truth.members[2].voice_s == 30  # never erased: the downtime is credited
    without_restart = Truth(AFK, 600).compute([
        voice(0, 1, 20), Happened(10, "erase", 1, {"done": 10.2}), Happened(30, "end"),
    ])
    assert without_restart.members[1].voice_s == 0


def test_a_voice_change_in_flight_when_a_sigterm_closes_the_gateway_may_be_missed():
    """Campaign long run, seed 171: a camera turned on 30 ms before the SIGTERM, whose shutdown
    closed the gateway 20 ms after it; the event, still in Discord's dispatch latency, never
    arrived, and the restart credited the downtime with the camera off. A change well before the
    close, or one before a SIGKILL's wider bound, is unaffected by this rule."""
    truth = Truth(AFK, downtime_cap_s=600).compute([
        voice(0, 1, 20), voice(0, 2, 20), voice(5, 2, 21), voice(9.9, 1, 21),
        Happened(10, "bot_down", None, {"signal": "SIGTERM"}), Happened(12, "bot_up"), Happened(20, "end"),
    ])
    assert round(truth.members[1].losable_voice_s, 3) == 0.1 + 2
    assert truth.members[2].losable_voice_s == 0


def test_a_voice_change_just_before_a_sigkill_may_be_lost_for_the_whole_downtime():
    """docs/outbox.md: a SIGKILL loses at most the last ~0.3 s of voice changes; the restart then
    credits the downtime with the state before the lost change (here AFK: nothing), so the change
    and the downtime may go either way (found by the campaign, seed 13 of the long run)."""
    truth = Truth(AFK, downtime_cap_s=600).compute([
        voice(0, 1, 20), voice(0, 2, 20), voice(10, 1, AFK), voice(19.9, 1, 20),
        Happened(20, "bot_down", None, {"signal": "SIGKILL"}), Happened(24, "bot_up"), Happened(30, "end"),
    ])
    assert truth.members[1].voice_s == 10 + 0.1 + 4 + 6
    assert round(truth.members[1].losable_voice_s, 3) == 4.1
    assert truth.members[2].losable_voice_s == 0


def invite_join(t, member, inviter):
    return Happened(t, "join", member, {"via": "abc", "inviter": inviter, "created": T0 - timedelta(days=400),
                                        "joined_at": T0 + timedelta(seconds=t)})


def reset(t, inviter, backup):
    return Happened(t, "reset", inviter, {"backup": backup})


def restore(t, backup):
    return Happened(t, "restore", None, {"backup": backup})


def figures(truth, inviter):
    counts = truth.inviters[inviter]
    return counts.regular, counts.left, counts.bonus


def test_a_restore_gives_back_what_its_reset_cleared_and_an_unknown_backup_changes_nothing():
    """A reset of ada clears her joins and bonus into its backup; a restore of an id no reset
    answered changes nothing; the restore of that backup gives back the joins and the bonus, once."""
    before = [invite_join(0, 201, 101), invite_join(1, 202, 101), invite_join(2, 203, 102),
              Happened(3, "leave", 202), Happened(4, "bonus", 101, {"amount": 3}),
              Happened(4.5, "bonus", 102, {"amount": 1})]
    truth = Truth(AFK, 600).compute([*before, reset(5, 101, "ib-a"), restore(6, "ib-000000000000"),
                                     Happened(7, "end")])
    assert figures(truth, 101) == (0, 0, 0) and figures(truth, 102) == (1, 0, 1)
    truth = Truth(AFK, 600).compute([*before, reset(5, 101, "ib-a"), restore(6, "ib-a"), restore(7, "ib-a"),
                                     Happened(8, "end")])
    assert figures(truth, 101) == (2, 1, 3) and figures(truth, 102) == (1, 0, 1)


def test_a_bonus_and_a_join_after_the_reset_stay_and_a_restore_undoes_only_its_own_reset():
    """After the reset: a bonus of 2 and a new join count; the restore adds back the 3 it took (5 in
    all). A second reset clears only what came after the first; restoring it keeps the first."""
    events = [invite_join(0, 201, 101), Happened(1, "bonus", 101, {"amount": 3}), reset(2, 101, "ib-a"),
              Happened(3, "bonus", 101, {"amount": 2}), invite_join(4, 202, 101)]
    truth = Truth(AFK, 600).compute([*events, restore(5, "ib-a"), Happened(6, "end")])
    assert figures(truth, 101) == (2, 0, 5)
    truth = Truth(AFK, 600).compute([*events, reset(5, 101, "ib-b"), restore(6, "ib-b"), Happened(7, "end")])
    assert figures(truth, 101) == (1, 0, 2)  # 202 and the bonus of 2 back; 201 and the 3 still reset


def test_a_cleared_member_who_rejoins_counts_only_after_the_restore_and_an_erased_one_not_at_all():
    """docs/invites.md: a rejoin credits nobody, so a member whose join a reset cleared does not count
    again by rejoining; the restore gives their first join back. An erased member's join is gone:
    the restore has nothing to give back, and their join after the erase is a first join."""
    events = [invite_join(0, 201, 101), invite_join(1, 202, 101), invite_join(2, 203, 101),
              reset(3, 101, "ib-a"), Happened(4, "leave", 201), invite_join(5, 201, 102),
              Happened(6, "erase", 202)]
    truth = Truth(AFK, 600).compute([*events, Happened(7, "end")])
    assert figures(truth, 101) == (0, 0, 0) and figures(truth, 102) == (0, 0, 0)
    truth = Truth(AFK, 600).compute([*events, restore(7, "ib-a"), Happened(8, "end")])
    assert figures(truth, 101) == (2, 0, 0)  # 201 (here again) and 203; 202's join was erased
    rejoined = [invite_join(7, 202, 102), restore(8, "ib-a"), Happened(9, "end")]
    truth = Truth(AFK, 600).compute([*events, *rejoined])
    assert figures(truth, 101) == (2, 0, 0) and figures(truth, 102) == (1, 0, 0)


def test_a_join_just_before_a_sigkill_whose_member_leaves_while_the_bot_is_down_may_be_lost():
    """Its event may not have reached the process (campaign long run, seed 82: 20 ms before the
    kill); the member gone before the bot is back leaves no other trace. A member who stays, or a
    join well before the kill, is still required."""
    def join(t, member):
        return Happened(t, "join", member, {"via": "abc", "inviter": 5, "created": T0 - timedelta(days=90),
                                            "joined_at": T0 + timedelta(seconds=t)})

    truth = Truth(AFK, 600).compute([
        join(1, 1), join(9.8, 2), join(9.9, 3), Happened(10, "bot_down", None, {"signal": "SIGKILL"}),
        Happened(11, "leave", 1), Happened(11.5, "leave", 2), Happened(14, "bot_up"), Happened(20, "end"),
    ])
    assert [truth.members[m].losable_join for m in (1, 2, 3)] == [False, True, False]


def test_a_member_whose_losable_join_left_no_trace_may_have_the_next_join_taken_for_the_first():
    """Campaign long run, seed 163: two joins sent just before a SIGKILL never reached the bot, and
    both members left while it was down. Their next joins (through 7's invite) were all the bot ever
    saw, and it counted them as first joins: allowed, and so is 7's regular count growing by them."""
    def join(t, member, inviter):
        return Happened(t, "join", member, {"via": "abc", "inviter": inviter,
                                            "created": T0 - timedelta(days=90),
                                            "joined_at": T0 + timedelta(seconds=t)})

    truth = Truth(AFK, 600).compute([
        join(1, 3, 5), join(9.9, 1, 5), join(9.95, 2, None),
        Happened(10, "bot_down", None, {"signal": "SIGKILL"}),
        Happened(11, "leave", 1), Happened(11.5, "leave", 2), Happened(14, "bot_up"),
        join(16, 1, 7), join(17, 2, 7), Happened(20, "end"),
    ])
    first, second = truth.members[1], truth.members[2]
    assert (first.inviter, first.losable_join, first.losable_rejoined) == (5, True, True)
    assert first.losable_next_inviter == 7
    assert (second.inviter, second.losable_next_inviter) == (None, 7)
    assert (truth.inviters[7].regular, truth.inviters[7].losable_regular) == (0, 2)
    assert not truth.members[3].losable_join and truth.inviters[5].losable_regular == 0


def test_every_credited_interval_after_the_first_may_be_a_whole_second_off():
    """The bot credits floor(end) - floor(start) per interval: two sessions of 0.6-9.9 s and
    10.1-19.2 s are credited 9 + 9 s for 18.4 s of truth (campaign seed 38: +1.5 s over a
    tolerance that counted restarts, not intervals)."""
    truth = Truth(AFK, downtime_cap_s=600).compute([
        voice(0.6, 1, 20), Happened(9.9, "leave", 1), voice(10.1, 1, 20, camera=True),
        Happened(19.2, "leave", 1), voice(20, 2, 20), Happened(30, "end"),
    ])
    assert truth.members[1].credited_intervals == 2 and truth.members[1].rounding_voice_s == 1.0
    assert truth.members[2].rounding_voice_s == 0.0
