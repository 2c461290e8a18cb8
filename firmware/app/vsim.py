# Virtual-SIM profile choice. A profile is {"name","mccmnc":[...],"apn","priority","cost"}.
# The country (MCC) comes from a fresh GNSS fix (where the wearer is: a cell
# across a border is heard kilometres into the neighbour), else from the serving
# cell (or the last one seen), else from the last fix kept on flash; the
# networks in range from AT+COPS=? in the modem's order, which follows signal.
# Normally the cheapest good profile wins, a network of the country first at
# equal cost; in an alarm cost is ignored and every (profile, network) pair is
# worth a try. The last profile that worked in a country is tried first next
# time, before any slow scan.
from app import flash


def choose_country(cell_mcc, fix, fresh):
    # -> (mcc or None, "gnss" | "cell" | None). fix: a loc dict or None; fresh:
    # it was taken this power-on, seconds ago.
    gnss = None
    if fix:
        from app.country import mcc_at  # only with a fix: its outlines stay out of the heap till then
        gnss = mcc_at(fix.get("lat"), fix.get("lon"))
    if gnss is not None and (fresh or cell_mcc is None):
        return gnss, "gnss"
    if cell_mcc is not None:
        return cell_mcc, "cell"
    return None, None


class Profiles:
    def __init__(self, profiles, memory_path):
        self.profiles = list(profiles or [])
        self.memory_path = memory_path
        self.memory = flash.read_json(memory_path, {}) or {}  # mcc -> [profile name, plmn]
        self.current = None  # the profile in use (its name goes into net.profile)

    def replace(self, profiles):
        self.profiles = list(profiles)
        names = [p.get("name") for p in self.profiles]
        self.memory = {k: v for k, v in self.memory.items() if v[0] in names}
        flash.write_json(self.memory_path, self.memory)

    def by_name(self, name):
        for p in self.profiles:
            if p.get("name") == name:
                return p
        return None

    def remembered(self, mcc):
        # (profile, plmn) that last worked in this country, or None
        got = self.memory.get(str(mcc)) if mcc is not None else None
        if not got:
            return None
        p = self.by_name(got[0])
        return (p, got[1]) if p else None

    def remember(self, mcc, profile, plmn):
        self.current = profile
        if mcc is None or profile is None:
            return
        if self.memory.get(str(mcc)) != [profile["name"], plmn]:
            self.memory[str(mcc)] = [profile["name"], plmn]
            flash.write_json(self.memory_path, self.memory)

    def forget(self, mcc):
        if self.memory.pop(str(mcc), None) is not None:
            flash.write_json(self.memory_path, self.memory)

    def ranked(self, visible, alarm=False, country=None):
        # visible: [plmn] strongest first. -> [(profile, plmn)] in the order to try.
        # At equal cost a network of the country (MCC) comes before a foreign one.
        out = []
        for rank, plmn in enumerate(visible):
            foreign = 1 if country is not None and plmn[:3] != str(country) else 0
            for p in self.profiles:
                if plmn in p.get("mccmnc", []):
                    cost = 0 if alarm else p.get("cost", 1.0)
                    out.append((cost, foreign, rank, p.get("priority", 9), p, plmn))
        out.sort(key=lambda t: (t[0], t[1], t[2], t[3]))
        return [(t[4], t[5]) for t in out]
