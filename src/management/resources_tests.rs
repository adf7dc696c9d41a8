use super::*;
use crate::telemetry::battery::{Battery, BatteryStatus};
use serde_json::json;

fn device(adapter: &str, id: &str, status: Liveness) -> DeviceState {
    DeviceState {
        adapter: adapter.into(),
        device: id.into(),
        status,
        last_seen_ms: Some(1_795_428_000_000),
        status_since_ms: Some(1_795_428_060_000),
        battery: None,
    }
}

fn inputs<'a>(
    adapters: &'a BTreeMap<String, String>,
    devices: &'a [DeviceState],
    problems: &'a [String],
) -> Inputs<'a> {
    Inputs {
        ae_name: "gw01",
        ae_id: "Cgw01",
        manufacturer: "ACME Cabinets",
        model: "SC-2",
        location: "Main St 17",
        version: "0.3.0",
        os_version: "Debian GNU/Linux 12 (bookworm); linux 6.1.0",
        memory: Some(Memory {
            available: 1000,
            total: 2000,
        }),
        problems,
        adapters,
        devices,
    }
}

fn find<'a>(all: &'a [Desired], id: &str) -> &'a Desired {
    all.iter().find(|d| d.id() == id).unwrap_or_else(|| {
        panic!(
            "no {id} in {:?}",
            all.iter().map(Desired::id).collect::<Vec<_>>()
        )
    })
}

#[test]
fn gateway_node_and_mgmt_objs() {
    let adapters = BTreeMap::from([
        ("mb1".to_string(), "modbus".to_string()),
        ("ble".to_string(), "ble".to_string()),
    ]);
    let devices = [
        device("mb1", "meter-1", Liveness::Up),
        device("mb1", "meter 2", Liveness::Down),
    ];
    let problems = ["a".to_string(), "b".to_string()];
    let all = desired(&inputs(&adapters, &devices, &problems));
    let node = find(&all, "gw01-node");
    assert_eq!(node.ty, ResourceType::Node);
    assert_eq!(
        Value::Object(node.attrs.clone()),
        json!({"ni": "citygate:gw01", "hael": ["Cgw01"]})
    );
    assert_eq!(
        Value::Object(find(&all, "gw01-node/deviceInfo").attrs.clone()),
        json!({"mgd": 1007, "dlb": "gw01", "man": "ACME Cabinets", "mod": "SC-2",
               "dty": "gateway", "fwv": "0.3.0",
               "osv": "Debian GNU/Linux 12 (bookworm); linux 6.1.0", "loc": "Main St 17"})
    );
    assert_eq!(
        Value::Object(find(&all, "gw01-node/memory").attrs.clone()),
        json!({"mgd": 1003, "mma": 1000, "mmt": 2000})
    );
    assert_eq!(
        Value::Object(find(&all, "gw01-node/firmware").attrs.clone()),
        json!({"mgd": 1001, "vr": "0.3.0", "fwn": "citygate", "url": "", "ud": false})
    );
    assert_eq!(find(&all, "gw01-node/eventLog").attrs["lgd"], json!("a\nb"));
    // One areaNwkInfo per adapter, even without devices; mapped names for odd ids.
    assert_eq!(
        Value::Object(find(&all, "gw01-node/areaNwkInfo-mb1").attrs.clone()),
        json!({"mgd": 1004, "ant": "modbus",
               "ldv": ["meter-1", name::container_name("meter 2")]})
    );
    assert_eq!(
        find(&all, "gw01-node/areaNwkInfo-ble").attrs["ldv"],
        json!([])
    );
    // Parents before children.
    let pos = |id: &str| all.iter().position(|d| d.id() == id).unwrap();
    assert!(pos("gw01-dev-meter-1") < pos("gw01-dev-meter-1/areaNwkDeviceInfo"));
    assert_eq!(pos("gw01-node"), 0);
}

#[test]
fn device_nodes_carry_status_labels_and_battery() {
    let adapters = BTreeMap::from([("ble".to_string(), "ble".to_string())]);
    let mut down = device("ble", "tag-1", Liveness::Down);
    down.battery = Some(Battery {
        percent: 9,
        status: BatteryStatus::LowBattery,
    });
    let up = device("ble", "tag-2", Liveness::Up);
    let mut unknown = device("ble", "tag-3", Liveness::Unknown);
    unknown.status_since_ms = None;
    unknown.last_seen_ms = None;
    let devices = [down, up, unknown];
    let all = desired(&inputs(&adapters, &devices, &[]));
    assert_eq!(
        Value::Object(find(&all, "gw01-dev-tag-1/areaNwkDeviceInfo").attrs.clone()),
        json!({"mgd": 1005, "dvd": "tag-1", "dvt": "ble", "awi": "ble", "ss": "down",
               "lbl": ["statusSince/2026-11-23T10:01:00.000Z", "lastSeen/2026-11-23T10:00:00.000Z"]})
    );
    assert_eq!(
        Value::Object(find(&all, "gw01-dev-tag-1/battery").attrs.clone()),
        json!({"mgd": 1006, "btl": 9, "bts": 5})
    );
    assert_eq!(find(&all, "gw01-dev-tag-1/battery").class, Class::Counter);
    let up = find(&all, "gw01-dev-tag-2/areaNwkDeviceInfo");
    assert_eq!(up.attrs["ss"], json!("up"));
    assert_eq!(
        up.attrs["lbl"],
        json!(["statusSince/2026-11-23T10:01:00.000Z"])
    );
    assert_eq!(up.class, Class::Immediate);
    assert!(all.iter().all(|d| d.id() != "gw01-dev-tag-2/battery"));
    let unknown = find(&all, "gw01-dev-tag-3/areaNwkDeviceInfo");
    assert_eq!(unknown.attrs["ss"], json!("unknown"));
    assert!(!unknown.attrs.contains_key("lbl"));
    assert_eq!(
        find(&all, "gw01-dev-tag-3").attrs["ni"],
        json!("citygate:gw01:tag-3")
    );
}

#[test]
fn device_node_names_follow_the_one_name_rule() {
    assert_eq!(device_node_name("gw01", "meter-1"), "gw01-dev-meter-1");
    let odd = device_node_name("gw01", "a/b");
    assert_eq!(odd, format!("gw01-dev-{}", name::container_name("a/b")));
    assert!(!odd.contains('/'));
    assert_eq!(gateway_node_name("gw01"), "gw01-node");
}

/// The request budget's core: polls that change nothing the platform must see send nothing,
/// whatever their number; a status change sends one update; counters wait until due.
#[test]
fn no_update_per_poll_cycle() {
    use crate::management::plan::{plan, Op, Published};
    use crate::telemetry::device_roster::DeviceRoster;
    let roster = DeviceRoster::default();
    roster.configure("mb1", "modbus", ["meter-1".to_string()]);
    let build = |mma: u64| {
        let adapters = roster.adapters();
        let devices = roster.devices();
        let mut i = inputs(&adapters, &devices, &[]);
        i.memory = Some(Memory {
            available: mma,
            total: 2000,
        });
        desired(&i)
    };
    let mut published = Published::default();
    let accept_all = |published: &mut Published, all: &[Desired], ops: &[Op]| {
        for op in ops {
            match op {
                Op::Create { index } => published.accepted(&all[*index].id(), &all[*index].attrs),
                Op::Update { index, attrs } => published.accepted(&all[*index].id(), attrs),
            }
        }
    };
    roster.observe("mb1", "meter-1", true, 1_000);
    let all = build(1000);
    let ops = plan(&all, &published, true);
    assert!(ops.iter().all(|o| matches!(o, Op::Create { .. })));
    assert_eq!(ops.len(), all.len());
    accept_all(&mut published, &all, &ops);
    // 1000 poll cycles, memory moving: nothing to send between counter ticks.
    for i in 0..1000 {
        roster.observe("mb1", "meter-1", true, 2_000 + i);
        let all = build(1000 + i as u64);
        assert_eq!(plan(&all, &published, false), vec![], "poll {i}");
    }
    // The counter tick sends the memory, once.
    let all = build(5000);
    let ops = plan(&all, &published, true);
    assert_eq!(ops.len(), 1);
    accept_all(&mut published, &all, &ops);
    assert_eq!(plan(&all, &published, true), vec![]);
    // A status change: one update of the device's areaNwkDeviceInfo, with what changed only.
    roster.observe("mb1", "meter-1", false, 9_000);
    let all = build(5000);
    let ops = plan(&all, &published, false);
    assert_eq!(ops.len(), 1);
    match &ops[0] {
        Op::Update { index, attrs } => {
            assert_eq!(all[*index].id(), "gw01-dev-meter-1/areaNwkDeviceInfo");
            assert_eq!(attrs["ss"], json!("down"));
            assert!(!attrs.contains_key("mgd") && !attrs.contains_key("dvd"));
        }
        other => panic!("{other:?}"),
    }
}
