//! Commands on the registers and the operator's views: import, export, gen,
//! clean, reconcile, acceptance, equipment, discrepancies, decisions.

use super::args::*;
use super::*;
use anyhow::{bail, Result};
use std::path::Path;
use std::process::ExitCode;

pub fn import(a: ImportArgs, node: &Path, wait: bool) -> Result<ExitCode> {
    let ImportArgs { file } = a;
    let (_lock, mut node) = open_exclusive(node, "import", wait)?;
    let r = sedx::send::import_file(&mut node, &file)?;
    if r.refused == 0 {
        println!("{} record(s) in the register, 0 refused", r.applied);
        return Ok(ExitCode::SUCCESS);
    }
    let codes: Vec<String> = r.by_code.iter().map(|(c, n)| format!("{c}×{n}")).collect();
    println!(
        "{} record(s) in the register, {} refused on import: {} (see `sedx quarantine list`)",
        r.applied,
        r.refused,
        codes.join(", ")
    );
    Ok(ExitCode::from(1))
}

pub fn export(a: ExportArgs, node: &Path, wait: bool) -> Result<ExitCode> {
    let ExportArgs { batch_size } = a;
    let (_lock, mut node) = open_exclusive(node, "export", wait)?;
    let done = sedx::tools::export::export(&mut node, batch_size.max(1))?;
    println!(
        "{} record(s) in {} batch file(s)",
        done.records,
        done.files.len()
    );
    for f in done.files {
        println!("  {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gen(a: GenArgs) -> Result<ExitCode> {
    let GenArgs {
        out,
        records,
        seed,
        defects,
        non_statutory,
        batch_size,
        from,
        to,
        agency,
        side,
    } = a;
    let from = from.unwrap_or_else(|| match side {
        sedx::domain::Role::Inspection => "insp-city".into(),
        sedx::domain::Role::Supervision => "sup-city".into(),
    });
    let opts = sedx::tools::generate::GenOptions {
        side,
        out,
        records,
        seed,
        defects: defects.clamp(0.0, 1.0),
        non_statutory: non_statutory.clamp(0.0, 1.0),
        batch_size: batch_size.max(3),
        from,
        to,
        agency,
    };
    let g = sedx::tools::generate::generate(&opts)?;
    println!(
        "{} records ({} equipment, {} reports, {} non-statutory) in {} files; defects: {:?}",
        g.records, g.equipment, g.reports, g.non_statutory, g.files, g.defects
    );
    Ok(ExitCode::SUCCESS)
}

pub fn clean(a: CleanArgs) -> Result<ExitCode> {
    let CleanArgs {
        file,
        out,
        max_problems,
    } = a;
    let report = sedx::tools::clean::clean(&file, out.as_deref())?;
    print!("{}", sedx::tools::clean::summary(&report));
    if report.problems() > max_problems {
        eprintln!(
            "sedx: {} problems (more than {max_problems})",
            report.problems()
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reconcile(a: ReconcileArgs, node: &Path) -> Result<ExitCode> {
    let ReconcileArgs {
        a,
        b,
        out,
        notices,
        agency,
        r6_only,
        max_problems,
    } = a;
    let r = sedx::tools::reconcile::reconcile(&a, &b, &out, r6_only)?;
    print!("{}", sedx::tools::reconcile::summary(&r));
    if notices {
        let (path, n) = sedx::tools::reconcile::notices(&r, node, &agency)?;
        println!("{n} discrepancy notice(s) in {}", path.display());
    }
    if r.problems() > max_problems {
        eprintln!("sedx: {} problems (more than {max_problems})", r.problems());
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn acceptance(node: &Path) -> Result<ExitCode> {
    let node = open(node)?;
    let queue = sedx::store::views::acceptance(&node.store)?;
    println!(
        "{} construction notice(s) awaiting installation inspection",
        queue.len()
    );
    for a in queue {
        println!(
            "  {} category {} {} {} planned {} agency {}",
            a.notice, a.category, a.user_unit, a.address, a.planned_start, a.agency
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn equipment(a: EquipmentArgs, node: &Path) -> Result<ExitCode> {
    let EquipmentArgs {
        cmd: EquipmentCmd::Show { code },
    } = a;
    let node = open(node)?;
    let code = sedx::domain::ids::normalize_code(&code);
    match sedx::store::views::equipment_show(&node.store, &code)? {
        Some(view) => print!("{view}"),
        None => bail!("no equipment {code} on record"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn discrepancies(node: &Path) -> Result<ExitCode> {
    let node = open(node)?;
    let list = sedx::store::views::discrepancies(&node.store)?;
    println!("{} discrepanc(ies)", list.len());
    for d in list {
        println!("  {d}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn decisions(node: &Path) -> Result<ExitCode> {
    let node = open(node)?;
    let list = sedx::store::views::undecided(&node.store, None)?;
    println!("待决定 {} awaiting decision", list.len());
    for u in list {
        println!(
            "  {} {} {} equipment {} agency {} from {}",
            u.date, u.kind, u.id, u.registration_code, u.agency, u.from
        );
    }
    Ok(ExitCode::SUCCESS)
}
